"""Test helpers: run the `streamsr` entry point in the test process (exit status and stderr, without a
subprocess's start-up, seconds on a loaded 2-core machine); build an engine for a window."""

from __future__ import annotations

import signal
import sys

from streamsr.cli import main


def run_main(capsys, *args: str) -> tuple[int, str]:
    """(exit status, stderr) of `streamsr ARGS`; the signal handlers main() installs are put back after."""
    code, _, err = run_main_io(capsys, *args)
    return code, err


def run_main_io(capsys, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `streamsr ARGS`, as run_main."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    argv, sys.argv = sys.argv, ["streamsr", *args]
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
        for s, h in saved.items():
            signal.signal(s, h)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def engine_for(*, weights, window: int = 44, batch: int = 16, **settings):
    """The engine `select_engine` builds for `weights` and windows of `window` LR pixels (tile = window, no
    halo), `settings` being other EnhancerSpec fields (engine, device, precision, cache_dir)."""
    from streamsr.backends import select_engine
    from streamsr.model import load_generator
    from streamsr.spec import EnhancerSpec

    spec = EnhancerSpec.resolve(weights, tile=window, halo=0, batch=batch, **settings)  # window 44: Tiler()'s
    return select_engine(load_generator(spec.weights), spec)


def enhance_file(job, enhancer, **options):
    """Run one file job here, as `streamsr.enhance_video` does (errors propagate): its JobResult.
    options: JobOptions fields (strict, overwrite, segment_seconds...)."""
    from streamsr.jobs import JobOptions, LocalExecutor, run_jobs

    (result,) = run_jobs([job], LocalExecutor(enhancer), JobOptions(**options), keep_going=False)
    return result
