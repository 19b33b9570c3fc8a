"""Safe YAML reading with positions: text -> a tree of PyYAML nodes, or diagnostics.

`compose(text, file)` returns `(root_node_or_None, diagnostics)`. It drives PyYAML's SafeLoader
event parser (libyaml's when present) and builds the node tree itself, so that it can enforce
what `yaml.compose` cannot: a nesting limit (the stock composer recurses and can overflow the
stack), a cap on how far aliases expand the document (a "billion laughs" file fails at once
instead of exhausting memory), and the rule that only plain data tags are read.
"""

from __future__ import annotations

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from audio_engine.errors import Diagnostic

MAX_BYTES = 1024 * 1024  # the file size limit, and the expanded-size limit for aliases
MAX_DEPTH = 64  # YAML nesting levels; real scripts need about 20 (8 repeats deep)

_CORE = "tag:yaml.org,2002:"
# Plain data only: what JSON has, plus what SafeLoader resolves implicitly from plain scalars
# (a timestamp is read, then refused where text is expected) and the merge key `<<`.
ALLOWED_TAGS = frozenset(
    _CORE + name for name in ("null", "bool", "int", "float", "str", "seq", "map", "timestamp")
)
MERGE_TAG = _CORE + "merge"
BAD_TAG = "!relax/refused"  # put on nodes already reported, so nobody reports them twice

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class _Stop(Exception):
    """A fatal problem: composing cannot go on (the diagnostic is already recorded)."""


def short_tag(tag: str) -> str:
    """`tag:yaml.org,2002:python/object` -> `!!python/object`."""
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _position(mark) -> tuple[int, int]:
    if mark is None:
        return 1, 1
    return mark.line + 1, mark.column + 1


class _Composer:
    def __init__(self, file: str):
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.resolver = Resolver()
        self.anchors: dict[str, Node] = {}
        self.open_anchors: set[str] = set()
        self.sizes: dict[int, int] = {}  # id(node) -> expanded size in characters
        self.seen_alias = False

    def error(self, mark, message: str) -> None:
        line, col = _position(mark)
        self.diagnostics.append(Diagnostic(self.file, line, col, "", message))

    def fatal(self, mark, message: str) -> _Stop:
        self.error(mark, message)
        return _Stop()

    def _check_size(self, size: int, mark) -> None:
        if self.seen_alias and size > MAX_BYTES:
            raise self.fatal(
                mark,
                f"aliases expand the document past the limit of 1 MiB ({MAX_BYTES} characters); "
                "use fewer or smaller aliases",
            )

    def _tag(self, event, kind, value=None) -> str:
        tag = event.tag
        if tag is None or tag == "!":
            if kind is ScalarNode:
                return self.resolver.resolve(ScalarNode, value, event.implicit)
            return self.resolver.resolve(kind, None, event.implicit)
        if tag not in ALLOWED_TAGS:
            self.error(
                event.start_mark,
                f"the tag '{short_tag(tag)}' is not allowed: only plain YAML data is read "
                "(text, numbers, true/false, null, lists and mappings)",
            )
            return BAD_TAG
        return tag

    def compose(self, events) -> Node | None:
        root: Node | None = None
        # Each open collection: [node, size_so_far, pending_key_for_mappings, anchor]
        stack: list[list] = []
        documents = 0

        def add(node: Node, size: int, mark=None) -> None:
            nonlocal root
            if not stack:
                root = node
                return
            frame = stack[-1]
            frame[1] += size
            self._check_size(frame[1], mark or node.start_mark)
            parent = frame[0]
            if isinstance(parent, SequenceNode):
                parent.value.append(node)
            elif frame[2] is None:
                frame[2] = node
            else:
                parent.value.append((frame[2], node))
                frame[2] = None

        for event in events:
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self.fatal(
                        event.start_mark,
                        "expected a single YAML document, found a second one (a line `---`)",
                    )
            elif isinstance(event, yaml.AliasEvent):
                self.seen_alias = True
                node = self.anchors.get(event.anchor)
                if node is None:
                    self.error(event.start_mark, f"the alias '*{event.anchor}' names no anchor")
                    add(ScalarNode(BAD_TAG, "", event.start_mark, event.end_mark), 1)
                elif event.anchor in self.open_anchors:
                    self.error(
                        event.start_mark,
                        f"the alias '*{event.anchor}' refers to a value that contains it",
                    )
                    add(ScalarNode(BAD_TAG, "", event.start_mark, event.end_mark), 1)
                else:
                    size = self.sizes[id(node)]
                    self._check_size(size, event.start_mark)
                    add(node, size, event.start_mark)
            elif isinstance(event, yaml.ScalarEvent):
                tag = self._tag(event, ScalarNode, event.value)
                node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
                size = 1 + len(event.value)
                self.sizes[id(node)] = size
                if event.anchor is not None:
                    self.anchors[event.anchor] = node
                add(node, size)
            elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise self.fatal(
                        event.start_mark,
                        f"the document is nested more than {MAX_DEPTH} levels deep",
                    )
                is_seq = isinstance(event, yaml.SequenceStartEvent)
                kind = SequenceNode if is_seq else MappingNode
                tag = self._tag(event, kind)
                node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
                if event.anchor is not None:
                    self.anchors[event.anchor] = node
                    self.open_anchors.add(event.anchor)
                stack.append([node, 1, None, event.anchor])
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                node, size, _, anchor = stack.pop()
                node.end_mark = event.end_mark
                self.sizes[id(node)] = size
                if anchor is not None:
                    self.open_anchors.discard(anchor)
                self._check_size(size, node.start_mark)
                add(node, size)
        return root


def compose(text: str, file: str) -> tuple[Node | None, list[Diagnostic]]:
    """Parse `text` into a node tree (aliases share nodes) and the diagnostics found.

    A syntax error, a second document, too deep nesting or alias expansion past 1 MiB stop the
    reading: the tree is then None. Refused tags and bad aliases are reported and the node is
    tagged `BAD_TAG`, and reading goes on.
    """
    composer = _Composer(file)
    loader = _Loader(text)
    root = None
    try:
        root = composer.compose(_events(loader))
    except _Stop:
        return None, composer.diagnostics
    except yaml.MarkedYAMLError as exc:
        composer.diagnostics.append(_syntax_error(exc, text, file))
        return None, composer.diagnostics
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        position = getattr(exc, "position", 0) or 0
        before = text[:position]
        line = before.count("\n") + 1
        col = position - (before.rfind("\n") + 1) + 1
        reason = getattr(exc, "reason", None) or "unreadable input"
        composer.diagnostics.append(Diagnostic(file, line, col, "", f"YAML error: {reason}"))
        return None, composer.diagnostics
    finally:
        loader.dispose()
    return root, composer.diagnostics


_OPENERS = {"sequence": ("[", "list"), "mapping": ("{", "mapping")}


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> Diagnostic:
    """A YAML syntax error said the way an author fixes it, at the place to fix.

    PyYAML reports an unclosed quote where the file ends and a tab as "a character that cannot
    start any token"; its context mark knows where the quote opened.
    """
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    at = exc.problem_mark or exc.context_mark
    opened = exc.context_mark
    line, col = _position(at)
    char = _char_at(text, at)
    if (
        "quoted scalar" in context
        and opened is not None
        and ("end of stream" in problem or "document separator" in problem)
    ):
        quote = _char_at(text, opened) or '"'
        line, col = _position(opened)
        return Diagnostic(
            file,
            line,
            col,
            "",
            f"unterminated string: the {quote} that opens here is never closed "
            f"(add the closing {quote})",
        )
    if char == "\t" or "tab character" in problem:
        return Diagnostic(
            file,
            line,
            col,
            "",
            "a tab in the indentation: YAML indents with spaces only (replace the tab with spaces)",
        )
    message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    notes: tuple[Diagnostic, ...] = ()
    for kind, (bracket, name) in _OPENERS.items():
        if f"flow {kind}" in context and opened is not None and opened is not at:
            o_line, o_col = _position(opened)
            notes = (
                Diagnostic(
                    file, o_line, o_col, "", f"the {name} `{bracket}` that opens here", "note"
                ),
            )
    return Diagnostic(file, line, col, "", message, notes=notes)


def _char_at(text: str, mark) -> str:
    if mark is None:
        return ""
    lines = text.split("\n")
    if not 0 <= mark.line < len(lines) or not 0 <= mark.column < len(lines[mark.line]):
        return ""
    return lines[mark.line][mark.column]


def _events(loader):
    while loader.check_event():
        yield loader.get_event()
