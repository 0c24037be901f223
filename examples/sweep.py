"""Tune scenario 1's network with a HyperDrive sweep: learning rate and hidden size, 12 trials, 2 at once.

    python examples/sweep.py                         # local target, Random sampling + Bandit policy
    python examples/sweep.py --sampling bayesian     # TPE, no early termination (as azureml)
    python examples/sweep.py --policy median         # Random sampling + median stopping
    RAY_ADDRESS=127.0.0.1:6379 python examples/sweep.py   # the same sweep on a Ray cluster

The training script is scenario 1's (``tensorboard_demo/train.py``: a small network on
scikit-learn's digits writing TensorBoard event files itself), copied into
``./sample_projects/tensorboard-demo-sweep``. Each trial gets its parameters as script
arguments (``--learning_rate 0.03 --hidden 64``), as HyperDrive passes them; the primary metric
is the test accuracy the script writes into its own event files (``accuracy/test``), which the
trial's supervisor reads into the run history while it trains, so that the policy can stop a
lagging trial early. The sweep's controller runs as a job itself: the sweep goes on if this
script is stopped. TensorBoard follows the sweep: each trial is a run and an HParams session.
The last lines print the best run and its arguments, as Azure ML's sample notebooks do.

Only the compute target changes for Ray (``$RAY_ADDRESS`` or ``--ray ADDRESS``): a
``RayCompute`` instead of a ``LocalCompute``. The workspace is ``Workspace.from_config()``.
"""

import argparse
import math
import os
import shutil
from os import path, makedirs

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--ray", metavar="ADDRESS", default=os.environ.get("RAY_ADDRESS"),
                    help="run the trials on this Ray cluster (default: $RAY_ADDRESS; none: the local target)")
parser.add_argument("--sampling", choices=["random", "bayesian"], default="random")
parser.add_argument("--policy", choices=["bandit", "median", "none"], default="bandit")
parser.add_argument("--trials", type=int, default=12)
parser.add_argument("--concurrent", type=int, default=2)
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--epoch-sleep", type=float, default=0.5, help="seconds each trial pauses after an epoch")
parser.add_argument("--seed", type=int, default=1, help="the seed of the sampler (a rerun samples the same trials)")
parser.add_argument("--no-tensorboard", action="store_true", help="do not start TensorBoard")
args = parser.parse_args()

experiment_name = 'tensorboard-demo-sweep'
exp_dir = './sample_projects/' + experiment_name
if not path.exists(exp_dir):
    makedirs(exp_dir)
shutil.copy(path.join(path.dirname(path.abspath(__file__)), 'tensorboard_demo', 'train.py'), exp_dir)

from runhistory import Workspace, Experiment
ws = Workspace.from_config()
exp = Experiment(ws, experiment_name)

from runhistory.compute import ComputeTarget, LocalCompute, RayCompute
if args.ray:
    cluster_name = "raycluster"
    if cluster_name in ws.compute_targets and ws.compute_targets[cluster_name].kind == "ray":
        compute_target = ws.compute_targets[cluster_name]
    else:
        compute_target = ComputeTarget.create(ws, cluster_name, RayCompute.provisioning_configuration(address=args.ray, num_cpus=1))
else:
    cluster_name = "cpucluster"
    if cluster_name in ws.compute_targets:
        compute_target = ws.compute_targets[cluster_name]
    else:
        compute_target = ComputeTarget.create(ws, cluster_name, LocalCompute.provisioning_configuration())
compute_target.wait_for_completion(show_output=True)

from runhistory.train.dnn import TensorFlow      # an alias of Estimator
estimator = TensorFlow(source_directory=exp_dir, compute_target=compute_target, entry_script='train.py',
                       script_params={"--log_dir": "./logs", "--epochs": args.epochs, "--epoch_sleep": args.epoch_sleep})

from runhistory.train.hyperdrive import (
    BanditPolicy, BayesianParameterSampling, HyperDriveConfig, MedianStoppingPolicy, PrimaryMetricGoal,
    RandomParameterSampling, choice, loguniform,
)
# loguniform's bounds are in log space, as azureml's: learning rates from 0.001 to 2.
space = {
    "learning_rate": loguniform(math.log(1e-3), math.log(2.0)),
    "hidden": choice(8, 16, 32, 64, 128),
}
if args.sampling == "bayesian":
    sampling, policy = BayesianParameterSampling(space), None   # azureml allows no early termination with it
else:
    sampling = RandomParameterSampling(space, properties={"seed": args.seed})
    policy = {
        "bandit": BanditPolicy(evaluation_interval=1, slack_factor=0.1, delay_evaluation=5),
        "median": MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5),
        "none": None,
    }[args.policy]

hyperdrive_config = HyperDriveConfig(estimator=estimator, hyperparameter_sampling=sampling, policy=policy,
                                     primary_metric_name="accuracy/test",
                                     primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                                     max_total_runs=args.trials, max_concurrent_runs=args.concurrent)
hyperdrive_run = exp.submit(hyperdrive_config)

tb = None
if not args.no_tensorboard:
    from runhistory.tensorboard import Tensorboard
    tb = Tensorboard([hyperdrive_run], port=0)
    print(f"TensorBoard (the trials' curves and HParams, live): {tb.start()}", flush=True)
hyperdrive_run.wait_for_completion(show_output=True)

best_run = hyperdrive_run.get_best_run_by_primary_metric()
best_run_metrics = best_run.get_metrics()
parameter_values = best_run.get_details()['runDefinition']['arguments']
print('Best Run Id: ', best_run.id)
print('\n Accuracy:', best_run_metrics['accuracy/test'][-1])
print('\n Arguments:', parameter_values)

if tb is not None:
    tb.wait_for_runs(timeout=60)     # the last trials reach TensorBoard within a reload or two
    tb.stop()
