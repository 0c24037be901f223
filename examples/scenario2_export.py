"""Scenario 2 of the reference how-to: export run history (scikit-learn) to TensorBoard.

As written in the Azure ML how-to "Visualize experiment runs and metrics with TensorBoard"
but for the import lines. It logs into the workspace of ``Workspace.from_config()``
(``./.runhistory`` by default) and writes ``./exportedTBlogs``.
"""

from runhistory import Workspace, Experiment
ws = Workspace.from_config()
exp = Experiment(ws, 'export-to-tensorboard')
root_run = exp.start_logging()

from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split
X, y = load_diabetes(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
data = {"train": {"x": x_train, "y": y_train}, "test": {"x": x_test, "y": y_test}}

from tqdm import tqdm
alphas = [.1, .2, .3, .4, .5, .6, .7]
for alpha in tqdm(alphas):
    with root_run.child_run("alpha" + str(alpha)) as run:
        reg = Ridge(alpha=alpha)
        reg.fit(data["train"]["x"], data["train"]["y"])
        preds = reg.predict(data["test"]["x"])
        mse = mean_squared_error(preds, data["test"]["y"])
        run.log("alpha", alpha)          # per child run, so HParams can compare the sweep
        run.log("mse", mse)
    root_run.log("alpha", alpha)         # the original logs to the root run: a series of 7
    root_run.log("mse", mse)

from runhistory.tensorboard.export import export_to_tensorboard
import os
logdir = 'exportedTBlogs'
os.makedirs(logdir, exist_ok=True)
export_to_tensorboard(root_run, logdir)
root_run.complete()

from runhistory.tensorboard import Tensorboard
tb = Tensorboard([], local_root=logdir, port=6006)
url = tb.start()
tb.stop()
