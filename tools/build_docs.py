"""setup.py's install_data: the man pages and shell completions, rendered
at build time from ociruntime/help.py (the table `--help` prints), then
installed as data files:

  share/man/man8/ociruntime.8, ociruntime-COMMAND.8
  share/bash-completion/completions/ociruntime

install_data runs for `pip install .` (into the wheel's data); for
`pip install -e .` setuptools' editable_wheel means to run it too ("as non
editable") but asks the distribution for has_data(), which does not exist
(has_data_files does): Distribution below answers it.
"""
import os
import sys
import time

# setuptools has no install_data of its own: distutils' (setuptools'
# copy of it, since setup.py imported setuptools first).
from distutils.command.install_data import install_data

from setuptools.dist import Distribution as _Distribution

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "docs")
# setup()'s data_files must be non-empty for install_data to run at all;
# run() replaces it with the generated files.
PLACEHOLDER = [("share/man/man8", [])]


class InstallDocs(install_data):
    def run(self):
        sys.path.insert(0, ROOT)
        try:
            from ociruntime import help
        finally:
            sys.path.remove(ROOT)
        # SOURCE_DATE_EPOCH: the same pages from the same sources.
        when = time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", time.time())))
        # relative paths: distutils refuses absolute ones
        self.data_files = [(d, [os.path.relpath(f) for f in fs])
                           for d, fs in help.write_docs(OUT, time.strftime("%Y-%m-%d", when))]
        super().run()


class Distribution(_Distribution):
    def has_data(self):
        return self.has_data_files()
