"""What a function of ours can raise, read from the source: every call it makes is followed through
our own code (domain, engine, projections, adapters), collecting the exception classes each `raise`
names, less those an enclosing `try` catches, and the statuses of `error_response(<number>, ...)`.

A call's target is found from the receiver's type where the code says it (parameter and variable
annotations, `self.x = x` in `__init__`, a constructor call, a function's return annotation or its
one `return`); a port (a Protocol) stands for every class of ours with that method; a receiver of
unknown type stands for every method of ours of that name, unless builtin values have a method of
that name too (BUILTIN_METHODS). So it may find more than a route can really raise, and less only
where a method of ours named like a builtin's (`get`) is called on a receiver whose type the code
does not say. It does not see calls made inside libraries (except LIBRARY_RAISES), nor code run by
a task started with create_task (it fails in the task: a saga's failure never reaches the request
that started it).
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
from collections import defaultdict
from pathlib import Path

from aiohttp import web

from tests.unit.source_names import Function, annotation_in, is_protocol, scope, self_assignments, value_in

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "engine", "projections", "adapters")
NOT_IN_THE_SERVER = ("adapters/cli",)  # the CLI is a client of the API
# An untyped receiver calling one of these is taken for the builtin value it nearly always is (a
# row's .get, a string's .strip): followed, `row.get` would stand for every `get` of ours.
BUILTIN_METHODS = {n for t in (dict, list, str, bytes, set, tuple, int, float) for n in dir(t) if not n.startswith("_")}
NOT_THE_CALLERS = {"create_task", "ensure_future", "add_done_callback", "call_soon", "call_later"}
# What a library call raises into our code, by (receiver type, method): aiohttp reading a body past
# the application's client_max_size.
LIBRARY_RAISES = {(web.BaseRequest, name): {web.HTTPRequestEntityTooLarge} for name in ("read", "text", "json", "post")}


@functools.cache
def annotations_of(method: ast.AST) -> tuple[ast.AST, ...]:
    """The annotations of a method's `x: T = v` statements (asked once per attribute it assigns)."""
    return tuple(n.annotation for n in ast.walk(method) if isinstance(n, ast.AnnAssign))


class Code:
    """Every function and method of our packages, and what each can raise."""

    def __init__(self):
        self.functions: dict[tuple[str, str], Function] = {}
        self.methods: dict[type, dict[str, Function]] = defaultdict(dict)
        self.classes: set[type] = set()
        self.by_name: dict[str, list[Function]] = defaultdict(list)
        for package in PACKAGES:
            for path in sorted((REPO / package).rglob("*.py")):
                if any(path.relative_to(REPO).as_posix().startswith(p + "/") for p in NOT_IN_THE_SERVER):
                    continue
                self._index(".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"), path)
        self._results: dict[Function, set] = {}
        self._running: set[Function] = set()
        self._done: set[Function] = set()
        self._via: dict[Function, dict] = defaultdict(dict)  # error -> the callee it came from, or the line raising it

    def _index(self, name: str, path: Path) -> None:
        module = importlib.import_module(name)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._add(Function(module, node.name, node))
            elif isinstance(node, ast.ClassDef) and isinstance(cls := getattr(module, node.name, None), type):
                self.classes.add(cls)
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self.methods[cls][item.name] = self._add(Function(module, f"{node.name}.{item.name}", item, cls))

    def _add(self, function: Function) -> Function:
        self.functions[(function.module.__name__, function.qualname)] = function
        if function.cls is not None and not is_protocol(function.cls):
            self.by_name[function.qualname.rsplit(".", 1)[-1]].append(function)
        return function

    def of(self, obj) -> Function | None:
        obj = inspect.unwrap(obj) if callable(obj) else obj
        return self.functions.get((getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)))

    def why(self, fn, error) -> str:
        """The chain of calls through which `error` may escape `fn`, down to the line raising it."""
        function, chain = self.of(fn), []
        while isinstance(function, Function) and len(chain) < 30:
            chain.append(function.qualname)
            function = self._via[function].get(error)
            if isinstance(function, str):
                chain.append(function)
        return " -> ".join(chain)

    # -- what escapes a function -----------------------------------------------------------

    def raises(self, fn) -> set:
        """Exception classes that may escape `fn` (a function of ours), and statuses (ints) it may answer."""
        function = self.of(fn)
        assert function is not None, f"{fn} is not a function of our packages"
        while True:  # to a fixed point: a call cycle first sees what the previous round found
            before, self._done = dict(self._results), set()
            found = self._escapes(function)
            if before == self._results:
                return found

    def _escapes(self, function: Function) -> set:
        if function in self._done or function in self._running:
            return self._results.get(function, set())
        self._running.add(function)
        try:
            found = self._statements(function.node.body, self._typed(function), caught=set())
        finally:
            self._running.discard(function)
        self._results[function] = found
        self._done.add(function)
        return found

    def _statements(self, statements, function: Function, caught: set) -> set:
        found = set()
        for statement in statements:
            found |= self._statement(statement, function, caught)
        return found

    def _statement(self, node, function: Function, caught: set) -> set:
        if isinstance(node, ast.Raise):
            found = self._expressions([node.exc, node.cause], function)
            self._take(function, found, caught if node.exc is None else self._raised(node.exc, function),
                       f"{function.module.__name__}:{node.lineno}")
            return found
        if isinstance(node, ast.Try):
            return self._try(node, function, caught)
        if isinstance(node, ast.ClassDef):
            return set()
        # A nested function is inlined: it is called here, or passed on to be called.
        found = set()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                found |= self._expressions([child], function)
            elif isinstance(child, (ast.stmt, ast.withitem, ast.match_case)):
                found |= self._statement(child, function, caught)
        return found

    def _try(self, node: ast.Try, function: Function, caught: set) -> set:
        body = self._statements(node.body, function, caught)
        errors = {e for e in body if not isinstance(e, int)}
        found = body - errors
        handled = [(handler, self._handled(handler, function)) for handler in node.handlers]
        found |= {e for e in errors if not any(issubclass(e, k) for _, kinds in handled for k in kinds)}
        for handler, kinds in handled:
            these = {e for e in errors if any(issubclass(e, k) or issubclass(k, e) for k in kinds)}
            if handler.name:
                function.types.setdefault(f"except {handler.name}", set()).update(these)
            found |= self._statements(handler.body, function, these)
        return found | self._statements(node.orelse, function, caught) | self._statements(node.finalbody, function, caught)

    def _handled(self, handler: ast.ExceptHandler, function: Function) -> tuple[type, ...]:
        if handler.type is None:
            return (BaseException,)
        nodes = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        return tuple(k for k in (value_in(scope(function), n) for n in nodes) if isinstance(k, type))

    def _raised(self, node, function: Function) -> set:
        if isinstance(node, ast.Call):
            node = node.func
        if isinstance(node, ast.Name) and f"except {node.id}" in function.types:
            return set(function.types[f"except {node.id}"])  # `except X as e: ... raise e`
        value = value_in(scope(function), node)
        return {value} if isinstance(value, type) and issubclass(value, BaseException) else set()

    def _expressions(self, nodes, function: Function) -> set:
        found = set()
        for node in nodes:
            if node is None:
                continue
            if isinstance(node, ast.Call):
                found |= self._call(node, function)
                if isinstance(node.func, ast.Attribute) and node.func.attr in NOT_THE_CALLERS:
                    continue  # what the task runs fails in the task, not here
            found |= self._expressions([n for n in ast.iter_child_nodes(node) if isinstance(n, ast.expr)], function)
        return found

    def _call(self, node: ast.Call, function: Function) -> set:
        found, line = set(), f"{function.module.__name__}:{node.lineno}"
        targets = self._targets(node.func, function)
        for target in targets:
            self._take(function, found, self._escapes(target), target)
        if any(t.qualname == "error_response" for t in targets) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, int):
            self._take(function, found, {node.args[0].value}, line)
        if isinstance(node.func, ast.Attribute):
            receiver = self._type(node.func.value, function)
            for (kind, name), errors in LIBRARY_RAISES.items():
                if name == node.func.attr and isinstance(receiver, type) and issubclass(receiver, kind):
                    self._take(function, found, errors, f"{line} ({ast.unparse(node.func)})")
        for argument in node.args:  # a function passed to be run and awaited (to_thread, run_in_executor)
            if isinstance(argument, (ast.Name, ast.Attribute)):
                for target in self._precise(argument, function) or []:
                    self._take(function, found, self._escapes(target), target)
        return found

    def _take(self, function: Function, found: set, errors: set, via) -> None:
        for error in errors - found:
            found.add(error)
            self._via[function].setdefault(error, via)

    # -- what a call calls ---------------------------------------------------------------

    def _targets(self, node, function: Function) -> list[Function]:
        precise = self._precise(node, function)
        if precise is not None:
            return precise
        if isinstance(node, ast.Attribute) and node.attr not in BUILTIN_METHODS:
            return list(self.by_name.get(node.attr, []))
        return []

    def _precise(self, node, function: Function) -> list[Function] | None:
        """The functions `node` names when its receiver's type is known; None when it is not."""
        if isinstance(node, ast.Name):
            return self._callee(value_in(scope(function), node)) if node.id not in function.types else []
        if not isinstance(node, ast.Attribute):
            return []
        receiver = self._type(node.value, function)
        if receiver is None:
            return None
        if inspect.ismodule(receiver):
            return self._callee(getattr(receiver, node.attr, None))
        if is_protocol(receiver):
            return [self.methods[cls][node.attr] for cls in self._implementations(receiver) if node.attr in self.methods[cls]]
        method = self._method(receiver, node.attr)
        if method is not None:
            return [method]
        return self._callee(self._attribute_type(receiver, node.attr))

    def _implementations(self, protocol: type) -> list[type]:
        """Our classes that have every member a port names (structural, as a Protocol is)."""
        members = [n for n in vars(protocol) if not n.startswith("_")]
        return [cls for cls in self.classes if not is_protocol(cls) and all(hasattr(cls, m) for m in members)]

    def _callee(self, value) -> list[Function]:
        if isinstance(value, type):
            init = self._method(value, "__init__")
            return [init] if init else []
        found = self.of(value) if callable(value) else None
        return [found] if found else []

    def _method(self, cls: type, name: str) -> Function | None:
        for klass in cls.__mro__:
            if name in self.methods.get(klass, {}):
                return self.methods[klass][name]
            if name in vars(klass):
                return None  # a library class's
        return None

    # -- types -------------------------------------------------------------------------------

    def _type(self, node, function: Function, depth: int = 0):
        """The class (or module) of what `node` evaluates to, when the code says it."""
        if depth > 8:
            return None
        if isinstance(node, ast.Await):
            return self._type(node.value, function, depth + 1)
        if isinstance(node, ast.Name):
            if node.id in ("self", "cls") and function.cls is not None:
                return function.cls
            if node.id in function.types:
                return function.types[node.id]
            value = value_in(scope(function), node)
            if value is None or isinstance(value, type) or inspect.ismodule(value):
                return value
            return None if callable(value) else type(value)  # a module's constant: SETTINGS = {...}
        if isinstance(node, ast.Attribute):
            base = self._type(node.value, function, depth + 1)
            if inspect.ismodule(base):
                value = getattr(base, node.attr, None)
                return value if isinstance(value, type) or inspect.ismodule(value) else None
            if not isinstance(base, type):
                return None
            found = self._attribute_type(base, node.attr, depth + 1)
            if found is None and not self._may_be_ours(base, node.attr):
                return object  # a library's object: none of our methods is called on it
            return found
        if isinstance(node, ast.Subscript):  # request.app[ENGINE]: an aiohttp AppKey knows its type
            key = value_in(scope(function), node.slice)
            return getattr(key, "_t", None) if isinstance(key, web.AppKey) else None
        if isinstance(node, ast.Call):
            return self._returned(node.func, function, depth + 1)
        literal = {ast.Dict: dict, ast.DictComp: dict, ast.List: list, ast.ListComp: list, ast.JoinedStr: str}
        if type(node) in literal:
            return literal[type(node)]
        return type(node.value) if isinstance(node, ast.Constant) else None

    def _returned(self, func, function: Function, depth: int):
        value = value_in(scope(function), func)
        if isinstance(value, type):
            return value
        targets = self._precise(func, function) or []
        if len(targets) != 1:
            return None
        target = targets[0]
        if target.node.returns is not None:
            return annotation_in(target.module, target.node.returns)
        returns = [n for n in ast.walk(target.node) if isinstance(n, ast.Return) and n.value is not None]
        return self._type(returns[0].value, self._typed(target), depth) if len(returns) == 1 else None

    def _attribute_type(self, cls: type, name: str, depth: int = 0):
        for klass in cls.__mro__:
            module = inspect.getmodule(klass)
            annotations = vars(klass).get("__annotations__", {})
            if not isinstance(annotations, dict):  # `type` itself holds a descriptor there (type(x).__name__)
                annotations = {}
            if name in annotations and isinstance(annotations[name], str) and module is not None:
                return annotation_in(module, ast.Constant(annotations[name]))
            attribute = vars(klass).get(name)
            if isinstance(attribute, property) and (getter := self.of(attribute.fget)) is not None:
                return annotation_in(getter.module, getter.node.returns)
            for method in self.methods.get(klass, {}).values():  # __init__ first: the class's own order
                for target, value in self_assignments(method.node):
                    if target != name:
                        continue
                    annotated = any(value is annotation for annotation in annotations_of(method.node))
                    found = annotation_in(method.module, value) if annotated else \
                        self._type(value, self._typed(method), depth + 1)
                    if found is not None:
                        return found
        return None

    def _may_be_ours(self, cls: type, name: str) -> bool:
        """Whether attribute `name` of a `cls` may hold an object of ours: `cls` is ours and neither
        a library base class nor our code says what the attribute is."""
        if not any(klass in self.classes for klass in cls.__mro__):
            return False
        libraries = [k for k in cls.__mro__ if k not in self.classes and k is not object]
        assigned = any(target == name for klass in cls.__mro__ for method in self.methods.get(klass, {}).values()
                       for target, _ in self_assignments(method.node))
        return assigned or not libraries

    def _typed(self, function: Function) -> Function:
        """`function` with its local types read (parameters, annotated and plain assignments)."""
        if function.types is not None:
            return function
        function.types, function.imported = {}, {}
        for node in ast.walk(function.node):  # `from x import y` inside the function
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                module = importlib.import_module(node.module)
                for alias in node.names:
                    function.imported[alias.asname or alias.name] = getattr(module, alias.name, None)
        for node in ast.walk(function.node):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                args = node.args
                for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                    if getattr(arg, "annotation", None) is not None and (kind := annotation_in(function.module, arg.annotation)):
                        function.types.setdefault(arg.arg, kind)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if kind := annotation_in(function.module, node.annotation):
                    function.types[node.target.id] = kind
        for node in ast.walk(function.node):
            if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                continue
            pairs = [(node.targets[0], node.value)]
            if isinstance(node.targets[0], ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(node.targets[0].elts, node.value.elts))
            for target, value in pairs:
                if isinstance(target, ast.Name) and target.id not in function.types \
                        and (kind := self._type(value, function)) is not None:
                    function.types[target.id] = kind
        for node in ast.walk(function.node):  # the other local names: not the globals they may shadow
            if isinstance(node, ast.arg) or (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)):
                function.types.setdefault(node.arg if isinstance(node, ast.arg) else node.id, None)
        return function
