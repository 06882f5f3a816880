"""Content hashes of package directories: git tree ids, computed in batches.

A package is tagged by the git tree id of its source directory, so the same content always
gets the same tag, whether or not it is committed.

Rules, per directory (symlinks in its path resolved first, as `os.path.realpath` does):

- **In a git repository, clean**: the tree id of the directory at HEAD, exactly what
  `git rev-parse HEAD:DIR` (or `HEAD^{tree}` for the top level) prints.
- **In a git repository, dirty**: the tree id the directory would have if its working content
  were committed now (`git add -A`), with `dirty=True`. A directory is dirty iff
  `git status` reports any change under it (staged or not, including untracked files that are
  not ignored; a staged change that was reverted in the working tree still counts), or HEAD
  has no tree at its path (not committed yet, a file or a submodule in HEAD, or no commit at
  all). A directory holding nothing git would commit (empty, or only ignored files) and absent
  from HEAD therefore gets the empty tree `EMPTY_TREE`, dirty: its tag names content that
  nobody can check out.
- **Outside any git repository**: the tree id git would compute for the content, computed here
  without git, always dirty. No ignore rules apply except that `.git` entries are skipped
  (git can never store them); empty directories are omitted, as git cannot store them.

Cost is what `show-tag` over many packages needs: directories are grouped by repository (found
by looking for `.git` upward, without running git) and each repository costs a fixed number of
git processes however many packages it holds, HEAD's commit and time included (the package
model needs those, and no longer asks `git log`): two when every package is clean —
`cat-file --batch` (HEAD's commit object, then `HEAD:DIR` of each package) and `status`, run
at the same time — and at most seven: for the dirty ones `rev-parse` (the objects directory)
and a scratch index built by `read-tree`, `update-index` (fed exactly the paths `status`
reported, so unchanged files are never re-hashed), `write-tree` and `ls-tree`.

The user's repository is never changed: `status` runs with `GIT_OPTIONAL_LOCKS=0` so it does not
refresh the index, and the scratch index and every object written for it live in a temporary
directory (`GIT_INDEX_FILE`, `GIT_OBJECT_DIRECTORY`, with the real object store as an
alternate for reading) that is deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import GitError, InputError
from lkpkg.package.git import (
    GIT_OPTIONS,
    GitHead,
    git_environment,
    repository_top,
    spawn,
    spawn_together,
)
from lkpkg.package.plaintree import EMPTY_TREE, directory_tree_id

# For commands that write the scratch index: a split index would put a shared index file into
# the user's .git directory. Sparse-checkout settings are turned off too, as a precaution: the
# scratch index must hold HEAD's full tree, with no skip-worktree or sparse directory entries.
_SCRATCH_OPTIONS: tuple[bytes, ...] = (
    b"-c",
    b"core.splitIndex=false",
    b"-c",
    b"core.untrackedCache=false",
    b"-c",
    b"core.sparseCheckout=false",
    b"-c",
    b"index.sparse=false",
)


@dataclass(frozen=True)
class TreeHash:
    """A directory's content hash: its (would-be) git tree id and whether it is uncommitted."""

    tree: str
    dirty: bool

    @property
    def tag(self) -> str:
        return f"{self.tree}-dirty" if self.dirty else self.tree


def combine(main: TreeHash, extras: Sequence[TreeHash]) -> TreeHash:
    """Fold extra source directories into a package's hash, as linuxkit does.

    The combined id is the SHA-1 of the package's tree id followed by every extra tree id (hex,
    without any `-dirty`), in order; the result is dirty if any part is.
    """
    if not extras:
        return main
    import hashlib  # only here: show-tag of a package without extra sources needs no OpenSSL

    joined = main.tree + "".join(extra.tree for extra in extras)
    return TreeHash(
        tree=hashlib.sha1(joined.encode("ascii")).hexdigest(),  # noqa: S324 - linuxkit's id
        dirty=main.dirty or any(extra.dirty for extra in extras),
    )


@dataclass(frozen=True)
class Hashed:
    """`trees`: the content hash of each directory asked for, in order; `heads`: HEAD (commit
    and time; None before the first commit) of each repository top read along the way —
    every one that holds a directory, unless hashing at another `--hash-commit`."""

    trees: list[TreeHash]
    heads: dict[Path, GitHead | None]


def tree_hashes(dirs: Sequence[Path], commit: str | None = None) -> list[TreeHash]:
    """The content hash of each directory, in input order; see the module docstring.

    With `commit` other than HEAD (`--hash-commit`), the tree of each directory in that
    commit, never dirty, as linuxkit does.
    """
    return hash_directories(dirs, commit).trees


def hash_directories(dirs: Sequence[Path], commit: str | None = None) -> Hashed:
    """`tree_hashes`, and the HEAD of each repository, read by the same git processes."""
    if commit == "HEAD":
        commit = None
    real_dirs: list[Path] = []
    labels: dict[Path, str] = {}
    for directory in dirs:
        real = Path(directory).resolve()
        if not real.exists():
            raise InputError(f"{directory}: no such package directory")
        if not real.is_dir():
            raise InputError(f"{directory}: not a directory")
        real_dirs.append(real)
        labels.setdefault(real, str(directory))

    results: dict[Path, TreeHash] = {}
    repos: dict[Path, dict[bytes, str]] = {}
    for real, label in labels.items():
        top = repository_top(real)
        if top is None:
            results[real] = TreeHash(directory_tree_id(real), dirty=True)
        else:
            # git names paths relative to the top level, as bytes; b"" is the top itself.
            rel = b"" if real == top else os.fsencode(real.relative_to(top))
            repos.setdefault(top, {})[rel] = label
    heads: dict[Path, GitHead | None] = {}
    for top, members in repos.items():
        repository = _Repository(top, members, commit)
        for rel, found in repository.tree_hashes().items():
            results[top / os.fsdecode(rel)] = found
        if commit is None:
            heads[top] = repository.head
    return Hashed([results[real] for real in real_dirs], heads)


def _quote_alternate(path: bytes) -> bytes:
    # GIT_ALTERNATE_OBJECT_DIRECTORIES is colon-separated; git reads an entry that starts with
    # a double quote as a C-quoted string, which is how a path holding ':' gets through.
    if b":" not in path and not path.startswith(b'"'):
        return path
    out = bytearray(b'"')
    for byte in path:
        if byte in b'"\\':
            out += b"\\" + bytes([byte])
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def _containing(dirs: Iterable[bytes], paths: Iterable[bytes]) -> set[bytes]:
    """Those of `dirs` (relative to the top level, b"" for the top) that hold any of `paths`."""
    wanted = set(dirs)
    hit: set[bytes] = set()
    for path in paths:
        # Walk up the path's ancestors rather than test every directory against every path,
        # since a dirty tree can report many thousands of untracked files.
        current = path
        while True:
            if current in wanted:
                hit.add(current)
            if not current:
                break
            current = current.rpartition(b"/")[0]
        if hit == wanted:
            break
    return hit


class _Repository:
    """The package directories of one repository, hashed with a fixed number of git runs."""

    def __init__(self, top: Path, members: Mapping[bytes, str], commit: str | None) -> None:
        self.top = top
        self.commit = commit
        self.members = dict(members)
        self.head: GitHead | None = None
        self.env = git_environment()
        # Naming the repository explicitly keeps git from wandering further up than the `.git`
        # we found (it would, were that `.git` not a valid repository).
        self.base_argv: list[bytes] = [
            b"git",
            b"--git-dir=" + os.fsencode(top / ".git"),
            b"--work-tree=" + os.fsencode(top),
            *GIT_OPTIONS,
        ]

    def tree_hashes(self) -> dict[bytes, TreeHash]:
        if self.commit is not None:
            return self._at_commit(self.commit)
        head_tree, committed, changed = self._head_and_changes()
        dirty = set(self.members) if head_tree is None else _containing(self.members, changed)

        results: dict[bytes, TreeHash] = {}
        for rel in self.members:
            if rel in dirty:
                continue
            if rel in committed:
                results[rel] = TreeHash(committed[rel], dirty=False)
            else:
                # Nothing under it differs from HEAD, and HEAD has nothing there.
                results[rel] = TreeHash(EMPTY_TREE, dirty=True)
        if dirty:
            would_be = self._would_be_subtrees(self._objects(), head_tree, changed, sorted(dirty))
            for rel in dirty:
                results[rel] = TreeHash(would_be.get(rel, EMPTY_TREE), dirty=True)
        return results

    def _head_and_changes(self) -> tuple[str | None, dict[bytes, str], list[bytes]]:
        """HEAD's tree id (None: no commit yet), the tree id in HEAD of every member that is
        a tree there, and the changed paths (`_changed_paths`), from two git processes run
        at once: `cat-file --batch` (HEAD's commit object, then `HEAD:DIR` for each member)
        and `status`. HEAD's commit and time are kept in `self.head`."""
        rels = [rel for rel in self.members if rel]
        # `HEAD:DIR` is one line of cat-file's input: a name holding a newline goes to ls-tree.
        asked = [rel for rel in rels if b"\n" not in rel]
        lines = b"".join(b"HEAD:" + rel + b"\n" for rel in asked)
        cat_file, status = spawn_together(
            [
                ([*self.base_argv, b"cat-file", b"--batch"], b"HEAD\n" + lines),
                (self._status_argv(), None),
            ],
            cwd=self.top,
            env=self.env,
        )
        self._check(cat_file, b"cat-file")
        self._check(status, b"status")
        objects = _batch_objects(cat_file.stdout, 1 + len(asked))
        commit = objects[0]
        if commit is None or commit[1] != b"commit":
            self.head = None
            return None, {}, _changed_records(status.stdout)
        oid, _, body = commit
        self.head = GitHead.from_commit_object(oid, body)
        head_tree = body.split(b"\n", 1)[0].removeprefix(b"tree ").decode("ascii")
        answers = dict(zip(asked, objects[1:], strict=True))
        trees = {rel: oid for rel, (oid, kind, _) in _present(answers) if kind == b"tree"}
        if b"" in self.members:
            trees[b""] = head_tree
        odd = [rel for rel in rels if rel not in asked]
        if odd:
            trees.update(self._subtrees(head_tree, odd, self.env))
        return head_tree, trees, _changed_records(status.stdout)

    def _at_commit(self, commit: str) -> dict[bytes, TreeHash]:
        if commit.startswith("-"):
            raise InputError(f"invalid --hash-commit '{commit}'")
        done = self._git(
            b"rev-parse", b"--verify", b"-q", commit.encode() + b"^{tree}", env=self.env, ok=(0, 1)
        )
        if done.returncode != 0:
            raise InputError(f"{self._describe()}: no commit '{commit}' in {self.top}")
        tree = done.stdout.decode("ascii").strip()
        found = self._subtrees(tree, list(self.members), self.env)
        for rel, label in self.members.items():
            if rel not in found:
                raise InputError(f"{label}: not in git at commit '{commit}'")
        return {rel: TreeHash(found[rel], dirty=False) for rel in self.members}

    def _describe(self) -> str:
        labels = list(self.members.values())
        more = len(labels) - 1
        return labels[0] + (f" (and {more} more in the same repository)" if more else "")

    def _git(
        self,
        *args: bytes,
        env: Mapping[str, str],
        stdin: bytes | None = None,
        ok: Iterable[int] = (0,),
        options: Sequence[bytes] = (),
    ) -> subprocess.CompletedProcess[bytes]:
        argv = [*self.base_argv, *options, *args]
        done = spawn(argv, cwd=self.top, env=env, stdin=stdin)
        self._check(done, args[0], ok)
        return done

    def _check(
        self, done: subprocess.CompletedProcess[bytes], name: bytes, ok: Iterable[int] = (0,)
    ) -> None:
        if done.returncode not in tuple(ok):
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            raise GitError(f"{self._describe()}: git {name.decode()} failed: {reason}")

    def _objects(self) -> Path:
        """The real object directory (a scratch index reads it as an alternate)."""
        done = self._git(b"rev-parse", b"--git-path", b"objects", env=self.env)
        return self.top / os.fsdecode(done.stdout.rstrip(b"\n"))

    def _pathspecs(self, rels: Iterable[bytes]) -> list[bytes]:
        # The top level as a pathspec would be "", which git rejects; no pathspec means all.
        rels = list(rels)
        return [] if b"" in rels else [b"--", *rels]

    def _status_argv(self) -> list[bytes]:
        """`status` naming every path under the member directories that differs between
        HEAD, the index and the working tree, or is untracked and not ignored."""
        return [
            *self.base_argv,
            b"status",
            b"--porcelain=v1",
            b"-z",
            b"--no-renames",
            b"--untracked-files=all",
            b"--ignore-submodules=none",
            *self._pathspecs(self.members),
        ]

    def _subtrees(
        self, tree: str, rels: Sequence[bytes], env: Mapping[str, str]
    ) -> dict[bytes, str]:
        """The tree id at each of `rels` inside `tree`; absent when it is not a tree there."""
        found: dict[bytes, str] = {b"": tree} if b"" in rels else {}
        wanted = {rel for rel in rels if rel}
        if not wanted:
            return found
        # `-r` because without it ls-tree shows only the deepest of nested paths; `-d` keeps
        # the listing to trees, so its size is the number of directories, not of files.
        done = self._git(
            b"ls-tree",
            b"-r",
            b"-d",
            b"-z",
            b"--full-tree",
            tree.encode("ascii"),
            b"--",
            *sorted(wanted),
            env=env,
        )
        for record in done.stdout.split(b"\0"):
            if not record:
                continue
            info, _, path = record.partition(b"\t")
            _mode, kind, object_id = info.split(b" ")
            if kind == b"tree" and path in wanted:
                found[path] = object_id.decode("ascii")
        return found

    def _would_be_subtrees(
        self,
        objects: Path,
        head_tree: str | None,
        changed: Sequence[bytes],
        rels: Sequence[bytes],
    ) -> dict[bytes, str]:
        """The tree id each of `rels` would have if the working tree were committed now."""
        scratch = Path(tempfile.mkdtemp(prefix="lkpkg-treehash-"))
        try:
            scratch_objects = scratch / "objects"
            scratch_objects.mkdir()
            env = {
                **self.env,
                "GIT_INDEX_FILE": str(scratch / "index"),
                "GIT_OBJECT_DIRECTORY": str(scratch_objects),
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": os.fsdecode(
                    _quote_alternate(os.fsencode(objects))
                ),
            }
            if head_tree is not None:
                self._git(
                    b"read-tree", head_tree.encode("ascii"), env=env, options=_SCRATCH_OPTIONS
                )
            if changed:
                # Only the paths status reported can differ from HEAD, so updating exactly those
                # gives what `git add -A` would, without re-hashing unchanged files and without
                # add's complaints about pathspecs that lie under an ignored directory.
                self._git(
                    b"update-index",
                    b"--add",
                    b"--remove",
                    b"--replace",
                    b"-z",
                    b"--stdin",
                    env=env,
                    stdin=b"".join(path + b"\0" for path in changed),
                    options=_SCRATCH_OPTIONS,
                )
            written = self._git(b"write-tree", env=env, options=_SCRATCH_OPTIONS)
            tree = written.stdout.strip().decode("ascii")
            return self._subtrees(tree, rels, env)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _changed_records(out: bytes) -> list[bytes]:
    # Each record of `status -z` is "XY <path>"; an embedded repository shows as "?? dir/".
    return [record[3:].rstrip(b"/") for record in out.split(b"\0") if record]


def _batch_objects(out: bytes, count: int) -> list[tuple[str, bytes, bytes] | None]:
    """The `count` answers of `git cat-file --batch`: (object id, type, content) for an
    object found, None for a name it reports missing (or ambiguous)."""
    found: list[tuple[str, bytes, bytes] | None] = []
    position = 0
    for _ in range(count):
        end = out.index(b"\n", position)
        header = out[position:end].split(b" ")
        position = end + 1
        # "<oid> <type> <size>", else "<name as given> missing": never ends in a number.
        if len(header) == 3 and header[2].isdigit():
            size = int(header[2])
            found.append((header[0].decode("ascii"), header[1], out[position : position + size]))
            position += size + 1  # the content, then a newline
        else:
            found.append(None)
    return found


def _present(
    answers: Mapping[bytes, tuple[str, bytes, bytes] | None],
) -> list[tuple[bytes, tuple[str, bytes, bytes]]]:
    return [(rel, answer) for rel, answer in answers.items() if answer is not None]
