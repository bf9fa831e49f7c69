"""ScienceWorld's simulator runs in a JVM: one per process, started on first use and shared.

The `scienceworld` package starts a JVM for every `ScienceWorldEnv` it makes. A run makes
an environment for every episode and every branch, so this module starts the JVM once
(through py4j, with the jar the package ships) and gives each environment a simulator
object of its own inside it (`PythonInterface`: one world, independent of the others,
safe to step from several threads at once). A simulator the caller drops is freed in the
JVM by py4j's garbage collection. The JVM dies with the process (`die_on_exit`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import threading
import time
from typing import Any

from workbench.errors import EnvironmentSetupError

INSTALL_JAVA = "install a Java runtime, e.g. `apt-get install default-jre-headless` (`make setup` does it)"
INSTALL_PACKAGE = "pip install scienceworld (`make setup` installs it)"

lock = threading.Lock()
gateway: Any = None
start_seconds: float | None = None
"""How long starting the JVM took in this process (None: not started); the README quotes it."""


def task_names_by_id() -> dict[str, str]:
    """ScienceWorld's task ids (`1-1`) to names (`boil`), read from the package without a JVM."""
    try:
        from scienceworld.constants import ID2TASK
    except ImportError as error:
        raise EnvironmentSetupError(
            f"scienceworld: the `scienceworld` package is not installed ({error}); {INSTALL_PACKAGE}"
        ) from None
    return dict(ID2TASK)


def java_executable() -> str:
    """The `java` to run: $JAVA_HOME/bin/java where that exists, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        return os.path.join(java_home, "bin", "java")
    found = shutil.which("java")
    if found is None:
        raise EnvironmentSetupError(f"scienceworld: Java is not installed (no `java` on PATH); {INSTALL_JAVA}")
    return found


def new_simulator() -> Any:
    """A fresh simulator (one world) in this process's JVM, starting the JVM on first use."""
    return shared_gateway().jvm.scienceworld.runtime.pythonapi.PythonInterface()


def shared_gateway() -> Any:
    global gateway, start_seconds
    with lock:
        if gateway is None:
            started = time.perf_counter()
            gateway = start_gateway()
            start_seconds = time.perf_counter() - started
            atexit.register(stop_gateway)
        return gateway


def start_gateway() -> Any:
    java = java_executable()
    task_names_by_id()  # the package's own one-line error if it is missing
    from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway
    from py4j.protocol import Py4JError
    from scienceworld.constants import BASEPATH, JAR_PATH

    try:
        port, process = launch_gateway(
            classpath=JAR_PATH, die_on_exit=True, cwd=BASEPATH, return_proc=True, java_path=java,
            # Its own process group: Ctrl-C or a SIGTERM to the run's group must not kill the
            # JVM before the step in flight finishes (the run stops after it, as it promises).
            create_new_process_group=True,
        )
    except (OSError, ValueError, Py4JError) as error:
        raise EnvironmentSetupError(f"scienceworld: could not start Java ({java}): {error}; {INSTALL_JAVA}") from None
    return JavaGateway(gateway_parameters=GatewayParameters(port=port, auto_field=True), java_process=process)


def stop_gateway() -> None:
    global gateway
    with lock:
        if gateway is not None:
            with contextlib.suppress(Exception):  # at exit the JVM may be gone already
                gateway.shutdown()
            gateway = None
