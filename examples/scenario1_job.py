"""Scenario 1 of the reference how-to: a job that writes TensorBoard logs itself, watched live.

As written in the Azure ML how-to but for the import lines: the training script
(``tensorboard_demo/train.py``, a small network on scikit-learn's digits writing event files
with tensorboardX) is copied into ``./sample_projects/tensorboard-demo`` and submitted to a
local compute target; TensorBoard follows the job's ``logs/`` while it runs. Run it in any
folder: it uses the workspace found by ``Workspace.from_config()`` (``./.runhistory`` by
default). The last lines tell the TensorBoard URL, the curves the job's run history holds (its
event files, read while it ran) and what TensorBoard showed.
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

from runhistory.compute import ComputeTarget, LocalCompute
cluster_name = "cpucluster"
if cluster_name in ws.compute_targets:
    compute_target = ws.compute_targets[cluster_name]
else:
    compute_target = ComputeTarget.create(ws, cluster_name, LocalCompute.provisioning_configuration())
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
# The job's own event files are its run history too (read by its supervisor while it ran).
curves = {name: values for name, values in run.get_metrics().items() if isinstance(values, list)}
print(f"Run history of {run.id}: " + ", ".join(f"{name} ({len(values)} points)" for name, values in sorted(curves.items())))
for tb_run, tags in what_tensorboard_shows(url).items():
    print(f"TensorBoard at {url} shows run {tb_run}: " + ", ".join(f"{tag} ({n} points)" for tag, n in tags.items()))
tb.stop()
