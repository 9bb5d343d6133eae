"""thbench: the one-shot talking-head benchmark (HiDe-NeRF and the warping baselines on the
same pairs and metrics).

Every folder of the repository installs under this one name (``thbench.eval``,
``thbench.datasets``, ...), so the project coexists with Hugging Face ``datasets`` and any other
package that owns a common top-level name. This package's own modules are the application
layer: the command line (:mod:`thbench.cli`, ``python -m thbench``) and the profilers
(:mod:`thbench.profiling`).
"""
