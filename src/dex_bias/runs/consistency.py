"""Which versions of a run's inputs belong together, judged by what each version was made from.

Every version a run writes was made from versions of other datasets, and the run's manifest says
which. Two inputs belong together when no dataset appears in both their histories at different
versions: landmarks made from faces F belong with faces F and not with faces G; predictions made
by model M from faces F belong with M and F. The same dataset can be read under another name in
another conf environment, so a dataset is identified by its file path (``key``); and an input
whose history holds *another* file under the name of a second input (attributions of the
model's predictions, in a run that reads a vendor's predictions) does not belong with it either.

Plain Python: histories come from a ``provenance`` callable, ``(key, version) -> direct inputs``
(None when that version has no record: written by hand, or before manifests existed; such a
version belongs with anything, as it always did).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ref:
    """One version of one dataset: ``version`` is a Kedro stamp, or ``sha256:…`` for an unversioned file."""

    name: str
    key: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


Provenance = Callable[[str, str], "Sequence[Ref] | None"]


@dataclass
class Candidate:
    """An input of a run: the versions it may read, newest first."""

    name: str
    key: str
    versions: list[str]
    pinned: str | None = None  # chosen by the user (--load-versions) or the only one (unversioned)
    optional: bool = False  # the run can go on without it


@dataclass(frozen=True)
class Clash:
    """Why ``dataset`` does not belong with ``other``: the dataset both histories name (``through``
    in the history of ``dataset``, ``other_through`` in that of ``other``) at two versions, or
    two files under one name."""

    dataset: Ref
    other: Ref
    through: Ref
    other_through: Ref

    def explain(self) -> str:
        if self.through.key != self.other_through.key:
            return (
                f"{self.dataset} was made from the {self.through.name} in {self.through.key}, "
                f"but this run reads {self.other.name} from {self.other.key}"
            )
        if self.through.key == self.other.key:
            return f"{self.dataset} was made from {self.other.name} {self.through.version}, not from {self.other}"
        if self.other_through.key == self.dataset.key:
            return (
                f"{self.other} was made from {self.dataset.name} {self.other_through.version}, not from {self.dataset}"
            )
        return (
            f"{self.dataset} was made from {self.through.name} {self.through.version}, "
            f"{self.other} from {self.other_through.name} {self.other_through.version}"
        )


@dataclass
class Choice:
    """The versions a run reads, and what could not be reconciled."""

    versions: dict[str, str | None] = field(default_factory=dict)  # None: an optional input left out
    clashes: list[Clash] = field(default_factory=list)  # inputs with no version that belongs (refused)
    left_out: list[Clash] = field(default_factory=list)  # optional inputs left out, and why
    older: dict[str, tuple[str, str, Clash]] = field(default_factory=dict)  # name: (read, newest, why not newest)

    @property
    def consistent(self) -> bool:
        return not self.clashes


class Histories:
    """The history of each version: every dataset it was made from, directly or not, and itself."""

    def __init__(self, provenance: Provenance) -> None:
        self._provenance = provenance
        self._cache: dict[tuple[str, str], dict[str, dict[str, Ref]]] = {}

    def of(self, ref: Ref) -> dict[str, dict[str, Ref]]:
        """``{key: {version: ref}}`` over the whole history of ``ref`` (``ref`` included)."""
        cache_key = (ref.key, ref.version)
        if cache_key not in self._cache:
            history: dict[str, dict[str, Ref]] = {ref.key: {ref.version: ref}}
            seen = {cache_key}
            stack = list(self._provenance(ref.key, ref.version) or ())
            while stack:
                parent = stack.pop()
                history.setdefault(parent.key, {}).setdefault(parent.version, parent)
                if (parent.key, parent.version) not in seen:
                    seen.add((parent.key, parent.version))
                    stack.extend(self._provenance(parent.key, parent.version) or ())
            self._cache[cache_key] = history
        return self._cache[cache_key]

    def clash(self, ref: Ref, other: Ref) -> Clash | None:
        """The first reason ``ref`` and ``other`` do not belong together, or None."""
        mine, theirs = self.of(ref), self.of(other)
        for key in sorted(mine.keys() & theirs.keys()):
            if not mine[key].keys() & theirs[key].keys():
                return Clash(ref, other, _first(mine[key]), _first(theirs[key]))
        for key, versions in sorted(mine.items()):  # another file under the other input's name
            through = _first(versions)
            if key != ref.key and through.name == other.name and key != other.key:
                return Clash(ref, other, through, other)
        for key, versions in sorted(theirs.items()):
            through = _first(versions)
            if key != other.key and through.name == ref.name and key != ref.key:
                return Clash(other, ref, through, ref)
        return None


def _first(versions: dict[str, Ref]) -> Ref:
    return versions[sorted(versions)[-1]]


def choose_versions(
    candidates: Iterable[Candidate], provenance: Provenance | Histories, accept_mismatch: bool = False
) -> Choice:
    """For each input, the newest version that belongs with the versions chosen before it.

    Pinned inputs come first, as given; the others follow from the most upstream (the shortest
    history) down, so the newest upstream data decides and what was made from it must follow: a
    newer ``faces`` than the one the latest ``landmarks`` came from is a clash, not a reason to
    read older faces. An input with no version that belongs is a clash (refused), unless it is
    optional (then left out) or ``accept_mismatch`` (then its newest version is read anyway and
    the clash reported).
    """
    histories = provenance if isinstance(provenance, Histories) else Histories(provenance)
    candidates = [c for c in candidates if c.pinned or c.versions]
    choice = Choice()
    chosen: list[Ref] = []
    for candidate in [c for c in candidates if c.pinned]:
        ref = Ref(candidate.name, candidate.key, str(candidate.pinned))
        clash = next((found for other in chosen if (found := histories.clash(ref, other))), None)
        if clash is not None:
            choice.clashes.append(clash)
        chosen.append(ref)
        choice.versions[candidate.name] = ref.version

    def depth(candidate: Candidate) -> tuple[int, str]:
        return len(histories.of(Ref(candidate.name, candidate.key, candidate.versions[0]))), candidate.name

    for candidate in sorted((c for c in candidates if not c.pinned), key=depth):
        newest = Ref(candidate.name, candidate.key, candidate.versions[0])
        first_clash = None
        for version in candidate.versions:
            ref = Ref(candidate.name, candidate.key, version)
            clash = next((found for other in chosen if (found := histories.clash(ref, other))), None)
            if clash is None:
                chosen.append(ref)
                choice.versions[candidate.name] = version
                if first_clash is not None:
                    choice.older[candidate.name] = (version, newest.version, first_clash)
                break
            first_clash = first_clash or clash
        else:
            if candidate.optional:
                choice.left_out.append(first_clash)
                choice.versions[candidate.name] = None
            else:
                choice.clashes.append(first_clash)
                if accept_mismatch:
                    chosen.append(newest)
                    choice.versions[candidate.name] = newest.version
    return choice


def newest_consistent_set(candidates: Sequence[Candidate], provenance: Provenance | Histories) -> dict[str, str] | None:
    """A set of versions that belong together, anchored on the newest version of the most
    downstream input that allows one (what ``--load-versions`` can ask for); None if there is none."""
    histories = provenance if isinstance(provenance, Histories) else Histories(provenance)
    usable = [c for c in candidates if c.pinned or c.versions]
    by_depth = sorted(
        (c for c in usable if not c.pinned and not c.optional),
        key=lambda c: -len(histories.of(Ref(c.name, c.key, c.versions[0]))),
    )
    for anchor in by_depth:
        trial = [
            Candidate(c.name, c.key, c.versions, c.versions[0] if c is anchor else c.pinned, c.optional) for c in usable
        ]
        choice = choose_versions(trial, histories)
        if choice.consistent:
            return {name: version for name, version in choice.versions.items() if version is not None}
    return None
