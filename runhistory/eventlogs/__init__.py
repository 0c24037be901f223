"""TensorBoard event files read as run history: their framing, their records, a folder followed.

- :mod:`.records`: TFRecord framing (write a record; find the records in bytes, checksums checked);
- :mod:`.decode`: records as scalars, text, hparams and the kinds that stay in the files;
- :mod:`.follow`: :class:`~runhistory.eventlogs.follow.EventLogFollower`, a folder's event files
  stored into a run incrementally (a job's supervisor, the importer).

Only TensorBoard's protos and the C crc32c: no TensorFlow.
"""
