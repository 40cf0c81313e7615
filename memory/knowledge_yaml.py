"""The file side of knowledge files: YAML with line numbers for messages, in-place appends and
atomic writes.

Appending edits the text instead of dumping the whole document again, so people's comments,
quoting and order survive; the caller proves the result loads to the intended content.
"""

from __future__ import annotations

import difflib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tools.errors import INVALID_CONFIG, SqlsageError

if TYPE_CHECKING:
    from memory.knowledge import Example

# A place in the document: section, then mapping keys (str) and list indexes (int).
Key = tuple[str | int, ...]

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_REPORTED = 10


def read_document(text: str, path: Path) -> tuple[Any, dict[Key, int]]:
    """The document's data and the line of each place in it; syntax errors name file:line:col."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # the reader refuses control characters right here
        root = loader.get_single_node()
        if root is None:
            return None, {}
        lines = line_map(root, path)  # before constructing: merge keys rewrite the nodes
        return loader.construct_document(root), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "?"
        context = (
            f" ({exc.context} at line {exc.context_mark.line + 1})" if exc.context_mark else ""
        )
        raise SqlsageError(
            INVALID_CONFIG,
            f"{path}:{at}: invalid YAML: {exc.problem}{context}.",
            hint="Check the indentation and quoting there; quote text containing ': ' or ' #'.",
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise SqlsageError(
            INVALID_CONFIG,
            f"{path}:{line}: invalid YAML: character #x{exc.character:04x} is not allowed.",
            hint="Remove the control character; the file must be plain UTF-8 text.",
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def line_map(root: yaml.Node, path: Path) -> dict[Key, int]:
    """Every mapping entry and list item -> its 1-based line (a key's line for entries)."""
    lines: dict[Key, int] = {(): root.start_mark.line + 1}
    seen_nodes: set[int] = set()  # aliases reuse nodes: visit each once (no exponential walks)
    pending: list[tuple[yaml.Node, Key]] = [(root, ())]
    while pending:
        node, key = pending.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                line = key_node.start_mark.line + 1
                if name in first_line:
                    raise SqlsageError(
                        INVALID_CONFIG,
                        f"{path}:{line}: duplicate key '{name}' (first at line "
                        f"{first_line[name]}); YAML would silently keep only the last one.",
                        hint="Merge the two entries into one.",
                    )
                first_line[name] = line
                lines[(*key, name)] = line
                pending.append((value, (*key, name)))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*key, index)] = item.start_mark.line + 1
                pending.append((item, (*key, index)))
    return lines


def lookup_line(lines: dict[Key, int], loc: tuple[Any, ...]) -> tuple[int | None, Key]:
    """The line of the deepest known place along `loc` (a pydantic loc or a Key)."""
    key: Key = ()
    for part in loc:
        options = (part, str(part)) if isinstance(part, int) else (part,)
        step = next(((*key, o) for o in options if (*key, o) in lines), None)
        if step is None:
            break
        key = step
    return lines.get(key), key


def where(loc: tuple[Any, ...]) -> str:
    """'examples[2].sql: ' for a loc; '' for the document itself."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part != "[key]":
            text += f".{part}" if text else part
    return f"{text}: " if text else ""


def shape_error(
    path: Path, lines: dict[Key, int], found: list[tuple[Key, str]], hint: str
) -> SqlsageError:
    """One error listing what is wrong where, as file:line: place: problem."""
    shown = [
        f"{path}:{lookup_line(lines, loc)[0] or '?'}: {where(loc)}{what.rstrip('.')}"
        for loc, what in found[:_MAX_REPORTED]
    ]
    more = len(found) - len(shown)
    return SqlsageError(
        INVALID_CONFIG, "; ".join(shown) + (f"; and {more} more." if more else "."), hint=hint
    )


def describe_errors(
    errors: list[Any], allowed_keys: Callable[[Key], list[str]]
) -> list[tuple[Key, str]]:
    """Pydantic errors as (place, sentence about the YAML the user wrote)."""
    found: list[tuple[Key, str]] = []
    for error in errors:
        loc = tuple(error["loc"])
        kind, got = error["type"], _kind_of(error.get("input"))
        if kind == "missing":
            found.append((loc[:-1], f"'{loc[-1]}' is required"))
            continue
        if kind == "extra_forbidden":
            allowed = allowed_keys(loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            guess = f". Did you mean '{close[0]}'?" if close else ""
            what = f"unknown key '{loc[-1]}'; expected one of {', '.join(allowed)}{guess}"
        elif kind == "string_type":
            what = f"expected text, got {got} (put it in quotes)"
        elif kind == "dict_type":
            what = f"expected a mapping of 'name: value' lines, got {got}"
        elif kind == "list_type":
            what = f"expected a list of '- ' items, got {got}"
        elif kind == "model_type":
            what = f"expected a mapping with {', '.join(allowed_keys(loc))}, got {got}"
        else:
            what = str(error["msg"]).removeprefix("Value error, ")
        found.append((loc, what))
    return found


def _kind_of(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}
    if value is None:
        return "nothing"
    return names.get(type(value), f"the {type(value).__name__} {value!r}")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace the file in one step: readers see the old or the new content, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # umask applies
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # keep the permissions people gave the file
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---- appending an example ----------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """SafeDumper writing multi-line text as a literal block, so SQL stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # The emitter falls back to a quoted style whenever a block could not hold the text exactly.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def append_example_text(text: str, example: Example, path: Path) -> str:
    """`text` with the example added as the last item of its top-level `examples:` list."""
    newline = "\r\n" if "\r\n" in text else "\n"
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:  # empty or only comments
        return _splice(text, len(text), "examples:" + newline + _entry(example, 0, 2, newline))
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise _cannot_append(path, "the document is not a block mapping")
    pair = next(
        ((k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "examples"),
        None,
    )
    if pair is None:
        col = root.start_mark.column
        block = " " * col + "examples:" + newline + _entry(example, col, col + 2, newline)
        ended = text if text.endswith("\n") else text + newline
        blank = "" if ended.endswith(newline * 2) else newline  # set the new section apart
        return ended + blank + block
    key, items = pair
    if isinstance(items, yaml.SequenceNode) and items.value and not items.flow_style:
        dash = items.start_mark.column
        first = items.value[0]
        block_item = isinstance(first, yaml.MappingNode) and not first.flow_style
        content = first.start_mark.column if block_item else dash + 2
        at = _line_end(text, _content_end(items.value[-1]))
        return _splice(text, at, _entry(example, dash, content, newline))
    empty = (isinstance(items, yaml.ScalarNode) and items.tag == _NULL_TAG) or (
        isinstance(items, yaml.SequenceNode) and not items.value
    )
    if not empty:
        raise _cannot_append(path, "'examples' is not a block list ('- question: ...')")
    # `examples:`, `examples: ~` or `examples: []`: drop the empty value, list below the key.
    start, end = items.start_mark.index, items.end_mark.index
    while end > start and start > 0 and text[start - 1] in " \t":
        start -= 1
    at = _line_end(text, end) - (end - start)
    col = key.start_mark.column
    return _splice(text[:start] + text[end:], at, _entry(example, col + 2, col + 4, newline))


def _entry(example: Example, dash: int, content: int, newline: str) -> str:
    """The example as a block list item: '- question: ...' with its keys at `content`."""
    content = max(content, dash + 2)
    dumped = yaml.dump(
        {"question": example.question, "sql": example.sql},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,  # never fold long lines: a question stays on one line
    )
    first, *rest = dumped.rstrip("\n").split("\n")
    lines = [" " * dash + "-" + " " * (content - dash - 1) + first]
    lines += [" " * content + line if line else "" for line in rest]
    return newline.join(lines) + newline


def _content_end(node: yaml.Node) -> int:
    """Where the text of a block node ends: its last scalar's end, not the next token."""
    while isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.value:
        if node.flow_style:
            break
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return int(node.end_mark.index)


def _line_end(text: str, index: int) -> int:
    """The start of the line after `index` (itself when it already starts a line)."""
    if index == 0 or text[index - 1] == "\n":
        return index
    found = text.find("\n", index)
    return len(text) if found < 0 else found + 1


def _splice(text: str, at: int, block: str) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    gap = newline if at > 0 and text[at - 1] != "\n" else ""
    return text[:at] + gap + block + text[at:]


def _cannot_append(path: Path, why: str) -> SqlsageError:
    return SqlsageError(
        INVALID_CONFIG,
        f"Cannot append an example to {path}: {why}.",
        hint="Write the file in block style with a top-level 'examples:' list.",
    )
