"""Build hook: ship the published dataset inside the package.

``validation/published.csv`` is the dataset's one home in the repository (measured data kept apart
from the code that predicts it). A wheel has no repository around it, so building copies the file
into the package as ``rooflens/measure/published.csv``, where ``rooflens.measure.published.find_data``
looks first. Everything else about the build is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATASET = Path("validation") / "published.csv"
PACKAGED = Path("rooflens") / "measure" / "published.csv"


class BuildWithDataset(build_py):
    def run(self) -> None:
        super().run()
        if not DATASET.is_file():
            raise FileNotFoundError(f"{DATASET} is missing: the wheel must ship the published dataset")
        target = Path(self.build_lib) / PACKAGED
        self.mkpath(str(target.parent))
        self.copy_file(str(DATASET), str(target))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PACKAGED)]


setup(cmdclass={"build_py": BuildWithDataset})
