"""What the farm's printers keep on their storage: a sliced project per job title.

Every title a job can have (``jobs.TITLES``) exists twice, generated at start-up
(:mod:`tools.virtual_printer.project_files`), so whatever a running job
reports names a real file:

* ``/<Title_with_underscores>.gcode.3mf`` at the root: the ``gcode_file`` of
  P1/A1-style reports (``Benchy.gcode.3mf``);
* ``/cache/<Title>.gcode.3mf``: X1/H2-style reports name only the plate
  (``/data/Metadata/plate_1.gcode``) and the title (``subtask_name``); Bambu
  Studio leaves the file it sent in ``/cache``.

One FTPS server (:class:`tools.virtual_printer.ftps.FtpsServer`) serves every
printer: the serial a client expects (SNI) picks the printer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tools.virtual_printer.project_files import sample_project


def root_path(title: str) -> str:
    """Where a job's project lives at the storage root (its ``gcode_file``)."""
    return f"/{title.replace(' ', '_')}.gcode.3mf"


def cache_path(title: str) -> str:
    """Where a job's project lives in ``/cache`` (named after the title)."""
    return f"/cache/{title}.gcode.3mf"


def projects(titles: Iterable[str]) -> dict[str, bytes]:
    """One generated project per title (blocking: run it in an executor)."""
    return {title: sample_project(title) for title in titles}


def printer_storage(made: Mapping[str, bytes]) -> dict[str, bytes]:
    """A printer's storage: every project at the root and in ``/cache``.

    The contents are shared between printers (bytes are immutable); each
    printer gets its own mapping, so a file added to one stays there.
    """
    storage: dict[str, bytes] = {}
    for title, content in made.items():
        storage[root_path(title)] = content
        storage[cache_path(title)] = content
    return storage
