"""The child side of the sandbox: set up containment, define the code, run it.

Standard library only, and relative imports within this package only
(``tests/test_child_package.py`` enforces it): it runs under ``python -I`` in a scrubbed
environment, possibly as another user, and never imports the rest of pytest_carbon. It
is built into one file, a zipapp (:func:`pytest_carbon.sandbox.isolation.child_app`),
written into the sandbox directory and started as ``python -I child.pyz CTL_OUT_FD
CTL_IN_FD``; the job (code, cases, limits) is read from ``job.json`` beside it and the
file is removed before any generated code runs.

One module per job: :mod:`.protocol` (the control channel), :mod:`.containment` (the
namespaces mode's root filesystem, /dev, capabilities, keyrings), :mod:`.seccomp` (the
filter), :mod:`.plain` (plain data, which pytest's process decodes with the same
functions), :mod:`.verify` (the candidate's and the check's processes), :mod:`.bench`
(measured rounds) with :mod:`.worker` (the zygote and its workers, run as ``python -c``
from its own source), :mod:`.kernel` (ctypes and the mount table) and
:mod:`.__main__`.

The protocol with the parent is JSON lines on the two control fds, never stdout or stderr
(generated code may print). Messages the runner sends: ``setup`` (containment applied),
``setup_error`` (containment could not be applied: the parent treats it as a sandbox
failure); in the verify mode ``defined`` / ``define_error``, then one answer per ``call``
(``value``, ``raised``, ``unplain``); in the check mode ``call`` (the check calls the
candidate) and ``check_passed`` / ``check_failed``; ``ready`` / ``prepared`` / ``done``
(workload: the runner never runs the code there; a fresh zygote interpreter forks a
worker per batch of distinct inputs, see :func:`.worker.bench_zygote`), ``error`` (the
code failed); in the program mode (:mod:`.program`) ``ready``, ``compiled`` (the
compiler's status and output), ``prepared`` and ``done`` (each run's status, and its
normalised stdout or its SHA-256), and in the checker mode ``ready`` and one ``verdict``
per ``judge``. The runner never trusts its own exit: after its last message it calls
``os._exit`` so that threads left by the code do not keep it alive.
"""
