"""What the client and the server share: the wire encoding of batches, the routes and headers."""
