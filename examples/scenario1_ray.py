"""Scenario 1 of the reference how-to on a Ray cluster: a job that writes TensorBoard logs itself,
watched live.

``scenario1_job.py`` with a ``RayCompute`` target instead of ``LocalCompute``, otherwise
unchanged: the training script is submitted to the Ray cluster at ``$RAY_ADDRESS`` (else the one
started on this machine with ``ray start --head``), where Ray places its driver (runhistory's
supervisor) on a node with a free CPU; TensorBoard follows the job's ``logs/`` while it runs.
The workspace is ``Workspace.from_config()``: the embedded default works with a cluster whose
nodes are all this machine; a cluster of several machines needs a workspace every node reaches
(``runhistory server``, or PostgreSQL + S3), named by ``$RUNHISTORY_TRACKING_URI`` or a config.
"""

import json
import shutil
import urllib.parse
import urllib.request
from os import path, makedirs

experiment_name = 'tensorboard-demo'
exp_dir = './sample_projects/' + experiment_name
if not path.exists(exp_dir):
    makedirs(exp_dir)
shutil.copy(path.join(path.dirname(path.abspath(__file__)), 'tensorboard_demo', 'train.py'), exp_dir)

import os
from runhistory import Workspace, Experiment
ws = Workspace.from_config()
logs_dir = os.path.join(os.curdir, "logs")
arguments_list = ["--log_dir", logs_dir]
exp = Experiment(ws, experiment_name)

from runhistory.compute import ComputeTarget, RayCompute
cluster_name = "cpucluster"
if cluster_name in ws.compute_targets and ws.compute_targets[cluster_name].kind == "ray":
    compute_target = ws.compute_targets[cluster_name]
else:
    compute_target = ComputeTarget.create(ws, cluster_name, RayCompute.provisioning_configuration(address="auto", num_cpus=1))
compute_target.wait_for_completion(show_output=True)

from runhistory.train.dnn import TensorFlow      # an alias of Estimator
tf_estimator = TensorFlow(source_directory=exp_dir, compute_target=compute_target,
                          entry_script='train.py', script_params={"--log_dir": "./logs"})
run = exp.submit(tf_estimator)

from runhistory.tensorboard import Tensorboard
tb = Tensorboard([run])
url = tb.start()          # while the job still runs: its curves grow live
print(f"TensorBoard: {url}", flush=True)
run.wait_for_completion(show_output=True)


def what_tensorboard_shows(url):
    """The scalar tags of each TensorBoard run, with the number of points of each, from its HTTP API."""
    def get(route):
        with urllib.request.urlopen(url.rstrip("/") + route, timeout=30) as response:
            return json.load(response)
    shown = {}
    for tb_run, tags in sorted(get("/data/plugin/scalars/tags").items()):
        shown[tb_run] = {}
        for tag in sorted(tags):
            query = urllib.parse.urlencode({"run": tb_run, "tag": tag})
            shown[tb_run][tag] = len(get("/data/plugin/scalars/scalars?" + query))
    return shown


tb.wait_for_runs(timeout=60)     # the last epochs reach TensorBoard within a reload or two
for tb_run, tags in what_tensorboard_shows(url).items():
    print(f"TensorBoard at {url} shows run {tb_run}: " + ", ".join(f"{tag} ({n} points)" for tag, n in tags.items()))
tb.stop()
