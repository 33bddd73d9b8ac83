"""A small XML Schema reader: just the constructs the V2G message schemas use.

Reads the XSD files (with lxml) into plain objects: element declarations, complex and
simple types, particles, attribute uses and facets. It resolves references, named types,
type derivation (simpleContent / complexContent extension and restriction) and
substitution groups. Anything outside the supported subset raises ``XsdError`` with the
file and construct, so a new schema version fails loudly at generation time instead of
producing a wrong codec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
_XS = "{%s}" % XS

QName = tuple[str, str]  # (namespace, local name)


class XsdError(Exception):
    pass


# --------------------------------------------------------------------------- #
# simple types                                                                #
# --------------------------------------------------------------------------- #

# Built-in integer types: (name, min, max); None = unbounded.
_INT_BUILTINS: dict[str, tuple[int | None, int | None]] = {
    "integer": (None, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
    "long": (-(2**63), 2**63 - 1),
    "int": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-(2**7), 2**7 - 1),
    "nonNegativeInteger": (0, None),
    "unsignedLong": (0, 2**64 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 2**8 - 1),
    "positiveInteger": (1, None),
}
_STRING_BUILTINS = {
    "string", "normalizedString", "token", "language", "Name", "NCName", "NMTOKEN",
    "ID", "IDREF", "ENTITY", "anyURI", "QName", "NOTATION", "anySimpleType",
}
_OTHER_BUILTINS = {
    "boolean": "boolean", "hexBinary": "hexBinary", "base64Binary": "base64Binary",
    "decimal": "decimal", "float": "float", "double": "double",
}


@dataclass
class SimpleType:
    """A simple type with its effective facets, flattened over the derivation chain."""

    name: QName | None
    primitive: str  # string | boolean | integer | hexBinary | base64Binary | decimal | float
    int_min: int | None = None
    int_max: int | None = None
    int_builtin: str | None = None  # the XSD built-in integer type it derives from
    length: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    enumeration: list[str] | None = None
    patterns: list[str] = field(default_factory=list)
    base: "SimpleType | None" = None
    doc_name: str = ""  # for messages: the type name as written in the XSD

    @property
    def is_enum(self) -> bool:
        return self.enumeration is not None


def builtin_simple_type(local: str) -> SimpleType:
    if local in _INT_BUILTINS:
        lo, hi = _INT_BUILTINS[local]
        return SimpleType((XS, local), "integer", lo, hi, int_builtin=local, doc_name=local)
    if local in _STRING_BUILTINS:
        return SimpleType((XS, local), "string", doc_name=local)
    if local in _OTHER_BUILTINS:
        return SimpleType((XS, local), _OTHER_BUILTINS[local], doc_name=local)
    raise XsdError(f"unsupported built-in simple type xs:{local}")


# --------------------------------------------------------------------------- #
# structures                                                                  #
# --------------------------------------------------------------------------- #


@dataclass(eq=False)
class ElementDecl:
    name: QName
    type: "ComplexType | SimpleType | None" = None
    type_ref: QName | None = None
    is_global: bool = False
    abstract: bool = False
    nillable: bool = False
    substitution_group: QName | None = None
    source: str = ""

    def __repr__(self) -> str:
        return f"ElementDecl({self.name[1]})"


@dataclass(eq=False)
class Wildcard:
    namespace: str  # "##any", "##other", or a list of URIs
    target_ns: str

    def __repr__(self) -> str:
        return f"Wildcard({self.namespace})"


@dataclass(eq=False)
class ModelGroup:
    compositor: str  # sequence | choice | all
    particles: list["Particle"]


@dataclass(eq=False)
class Particle:
    term: Union[ElementDecl, ModelGroup, Wildcard]
    min_occurs: int = 1
    max_occurs: int | None = 1  # None = unbounded


@dataclass(eq=False)
class AttributeUse:
    name: QName
    type: SimpleType | None = None
    type_ref: QName | None = None
    required: bool = False


@dataclass(eq=False)
class ComplexType:
    name: QName | None
    particle: Particle | None = None  # None: empty or simple content
    simple_content: SimpleType | None = None
    attributes: list[AttributeUse] = field(default_factory=list)
    mixed: bool = False
    abstract: bool = False
    # derivation, resolved lazily
    base_ref: QName | None = None
    derivation: str | None = None  # extension | restriction
    own_particle: Particle | None = None
    own_attributes: list[AttributeUse] = field(default_factory=list)
    resolved: bool = False
    anonymous_for: ElementDecl | None = None

    def __repr__(self) -> str:
        return f"ComplexType({self.name[1] if self.name else 'anon'})"


# --------------------------------------------------------------------------- #
# the schema set                                                              #
# --------------------------------------------------------------------------- #


class SchemaSet:
    """All components reachable from one entry XSD (imports followed)."""

    def __init__(self, entry: Path) -> None:
        self.files: list[Path] = []
        self.elements: dict[QName, ElementDecl] = {}  # global elements
        self.complex_types: dict[QName, ComplexType] = {}
        self.simple_types: dict[QName, SimpleType | etree._Element] = {}
        self._simple_nodes: dict[QName, tuple[etree._Element, str]] = {}
        self.local_elements: list[ElementDecl] = []
        self.anonymous_types: list[ComplexType] = []
        self._load(Path(entry).resolve())
        self._resolve()

    # ---- loading ---------------------------------------------------------- #

    def _load(self, path: Path) -> None:
        if path in self.files:
            return
        self.files.append(path)
        root = etree.parse(str(path)).getroot()
        if root.tag != _XS + "schema":
            raise XsdError(f"{path.name}: not an XML Schema")
        tns = root.get("targetNamespace", "")
        ctx = _Ctx(
            file=path.name,
            tns=tns,
            qualified_elements=root.get("elementFormDefault") == "qualified",
            qualified_attributes=root.get("attributeFormDefault") == "qualified",
            nsmap=root.nsmap,
        )
        for child in root:
            if not isinstance(child.tag, str):
                continue
            tag = etree.QName(child).localname
            if child.tag != _XS + tag:
                raise XsdError(f"{path.name}: unexpected element {child.tag}")
            if tag in ("import", "include"):
                loc = child.get("schemaLocation")
                if loc:
                    self._load(_locate(path.parent, loc))
            elif tag == "element":
                decl = self._element(child, ctx, is_global=True)
                self.elements[decl.name] = decl
            elif tag == "complexType":
                ct = self._complex_type(child, ctx, name=(tns, child.get("name")))
                self.complex_types[ct.name] = ct
            elif tag == "simpleType":
                self._simple_nodes[(tns, child.get("name"))] = (child, ctx)
            elif tag == "annotation":
                pass
            else:
                raise XsdError(f"{path.name}: unsupported top-level xs:{tag}")

    def _qname(self, text: str, ctx: "_Ctx") -> QName:
        if ":" in text:
            prefix, local = text.split(":", 1)
        else:
            prefix, local = None, text
        ns = ctx.nsmap.get(prefix)
        if ns is None:
            if prefix is None:
                ns = ""
            else:
                raise XsdError(f"{ctx.file}: unknown prefix {prefix!r} in {text!r}")
        return (ns, local)

    def _element(self, node, ctx: "_Ctx", *, is_global: bool) -> ElementDecl:
        if node.get("ref"):
            raise XsdError(f"{ctx.file}: element ref handled by particle")
        name = node.get("name")
        form = node.get("form")
        qualified = is_global or (form == "qualified" if form else ctx.qualified_elements)
        decl = ElementDecl(
            name=(ctx.tns if qualified else "", name),
            is_global=is_global,
            abstract=node.get("abstract") == "true",
            nillable=node.get("nillable") == "true",
            source=ctx.file,
        )
        if node.get("substitutionGroup"):
            decl.substitution_group = self._qname(node.get("substitutionGroup"), ctx)
        if node.get("type"):
            decl.type_ref = self._qname(node.get("type"), ctx)
        for child in node:
            if not isinstance(child.tag, str):
                continue
            tag = etree.QName(child).localname
            if tag == "complexType":
                ct = self._complex_type(child, ctx, name=None)
                ct.anonymous_for = decl
                decl.type = ct
                self.anonymous_types.append(ct)
            elif tag == "simpleType":
                decl.type = self._simple_type_node(child, ctx, name=None)
            elif tag == "annotation":
                pass
            else:
                raise XsdError(f"{ctx.file}: unsupported xs:{tag} in element {name}")
        if decl.type is None and decl.type_ref is None:
            decl.type_ref = (XS, "anyType")
        if not is_global:
            self.local_elements.append(decl)
        return decl

    def _occurs(self, node, ctx) -> tuple[int, int | None]:
        mn = int(node.get("minOccurs", "1"))
        mx_s = node.get("maxOccurs", "1")
        mx = None if mx_s == "unbounded" else int(mx_s)
        return mn, mx

    def _particle(self, node, ctx: "_Ctx") -> Particle:
        tag = etree.QName(node).localname
        mn, mx = self._occurs(node, ctx)
        if tag == "element":
            if node.get("ref"):
                term = _Ref(self._qname(node.get("ref"), ctx))
            else:
                term = self._element(node, ctx, is_global=False)
            return Particle(term, mn, mx)
        if tag in ("sequence", "choice", "all"):
            parts = [
                self._particle(c, ctx)
                for c in node
                if isinstance(c.tag, str) and etree.QName(c).localname != "annotation"
            ]
            return Particle(ModelGroup(tag, parts), mn, mx)
        if tag == "any":
            return Particle(Wildcard(node.get("namespace", "##any"), ctx.tns), mn, mx)
        raise XsdError(f"{ctx.file}: unsupported particle xs:{tag}")

    def _attribute(self, node, ctx: "_Ctx") -> AttributeUse:
        if node.get("ref"):
            raise XsdError(f"{ctx.file}: attribute ref not supported")
        form = node.get("form")
        qualified = form == "qualified" if form else ctx.qualified_attributes
        use = AttributeUse(
            name=(ctx.tns if qualified else "", node.get("name")),
            required=node.get("use") == "required",
        )
        if node.get("type"):
            use.type_ref = self._qname(node.get("type"), ctx)
        for child in node:
            if isinstance(child.tag, str) and etree.QName(child).localname == "simpleType":
                use.type = self._simple_type_node(child, ctx, name=None)
        if use.type is None and use.type_ref is None:
            use.type_ref = (XS, "anySimpleType")
        return use

    def _complex_type(self, node, ctx: "_Ctx", *, name: QName | None) -> ComplexType:
        ct = ComplexType(
            name=name,
            mixed=node.get("mixed") == "true",
            abstract=node.get("abstract") == "true",
        )
        for child in node:
            if not isinstance(child.tag, str):
                continue
            tag = etree.QName(child).localname
            if tag in ("sequence", "choice", "all"):
                ct.own_particle = self._particle(child, ctx)
            elif tag == "attribute":
                ct.own_attributes.append(self._attribute(child, ctx))
            elif tag in ("simpleContent", "complexContent"):
                if child.get("mixed") == "true":
                    ct.mixed = True
                deriv = [c for c in child if isinstance(c.tag, str) and etree.QName(c).localname in ("extension", "restriction")]
                if len(deriv) != 1:
                    raise XsdError(f"{ctx.file}: {tag} without one extension/restriction")
                d = deriv[0]
                ct.derivation = etree.QName(d).localname
                ct.base_ref = self._qname(d.get("base"), ctx)
                ct._content_kind = tag  # type: ignore[attr-defined]
                for dc in d:
                    if not isinstance(dc.tag, str):
                        continue
                    dtag = etree.QName(dc).localname
                    if dtag in ("sequence", "choice", "all"):
                        ct.own_particle = self._particle(dc, ctx)
                    elif dtag == "attribute":
                        ct.own_attributes.append(self._attribute(dc, ctx))
                    elif dtag == "annotation":
                        pass
                    else:
                        # facets inside a simpleContent restriction
                        raise XsdError(f"{ctx.file}: unsupported xs:{dtag} in {tag}")
            elif tag in ("annotation",):
                pass
            elif tag == "anyAttribute":
                raise XsdError(f"{ctx.file}: anyAttribute not supported")
            else:
                raise XsdError(f"{ctx.file}: unsupported xs:{tag} in complexType")
        return ct

    def _simple_type_node(self, node, ctx: "_Ctx", *, name: QName | None) -> SimpleType:
        kids = [c for c in node if isinstance(c.tag, str) and etree.QName(c).localname != "annotation"]
        if len(kids) != 1:
            raise XsdError(f"{ctx.file}: simpleType {name} needs one restriction/list/union")
        k = kids[0]
        tag = etree.QName(k).localname
        if tag != "restriction":
            raise XsdError(f"{ctx.file}: simpleType {name}: xs:{tag} not supported")
        if k.get("base"):
            base = self.simple_type(self._qname(k.get("base"), ctx))
        else:
            inner = [c for c in k if isinstance(c.tag, str) and etree.QName(c).localname == "simpleType"]
            if not inner:
                raise XsdError(f"{ctx.file}: restriction without base")
            base = self._simple_type_node(inner[0], ctx, name=None)
        st = SimpleType(
            name=name,
            primitive=base.primitive,
            int_min=base.int_min,
            int_max=base.int_max,
            int_builtin=base.int_builtin,
            length=base.length,
            min_length=base.min_length,
            max_length=base.max_length,
            enumeration=None,  # enumerations are not inherited as such: a restriction narrows them
            patterns=list(base.patterns),
            base=base,
            doc_name=name[1] if name else base.doc_name,
        )
        enums: list[str] = []
        for f in k:
            if not isinstance(f.tag, str):
                continue
            ftag = etree.QName(f).localname
            val = f.get("value")
            if ftag == "enumeration":
                enums.append(val)
            elif ftag == "length":
                st.length = int(val)
            elif ftag == "minLength":
                st.min_length = int(val)
            elif ftag == "maxLength":
                st.max_length = int(val)
            elif ftag == "minInclusive":
                st.int_min = _max(st.int_min, int(val))
            elif ftag == "maxInclusive":
                st.int_max = _min(st.int_max, int(val))
            elif ftag == "minExclusive":
                st.int_min = _max(st.int_min, int(val) + 1)
            elif ftag == "maxExclusive":
                st.int_max = _min(st.int_max, int(val) - 1)
            elif ftag == "pattern":
                st.patterns.append(val)
            elif ftag in ("simpleType", "annotation", "whiteSpace"):
                pass
            else:
                raise XsdError(f"{ctx.file}: facet xs:{ftag} not supported")
        if enums:
            st.enumeration = enums
        elif base.enumeration is not None:
            st.enumeration = list(base.enumeration)
        if st.primitive != "integer" and (st.int_min is not None or st.int_max is not None) and base.primitive != "integer":
            raise XsdError(f"{ctx.file}: range facets on non-integer type {name}")
        return st

    def simple_type(self, qn: QName) -> SimpleType:
        if qn[0] == XS:
            return builtin_simple_type(qn[1])
        got = self.simple_types.get(qn)
        if isinstance(got, SimpleType):
            return got
        if qn not in self._simple_nodes:
            raise XsdError(f"unknown simple type {qn}")
        node, ctx = self._simple_nodes[qn]
        st = self._simple_type_node(node, ctx, name=qn)
        self.simple_types[qn] = st
        return st

    # ---- resolution ------------------------------------------------------- #

    def _resolve(self) -> None:
        for qn in list(self._simple_nodes):
            self.simple_type(qn)
        for ct in list(self.complex_types.values()) + self.anonymous_types:
            self._resolve_complex(ct)
        for decl in list(self.elements.values()) + self.local_elements:
            self._resolve_element(decl)
        # element refs inside particles
        for ct in list(self.complex_types.values()) + self.anonymous_types:
            if ct.particle is not None:
                self._resolve_refs(ct.particle)
        # substitution groups: head -> members (transitive)
        self.substitutes: dict[QName, list[ElementDecl]] = {}
        for decl in self.elements.values():
            head = decl.substitution_group
            seen = set()
            while head is not None and head not in seen:
                seen.add(head)
                self.substitutes.setdefault(head, []).append(decl)
                head_decl = self.elements.get(head)
                if head_decl is None:
                    raise XsdError(f"substitution group head {head} not found")
                head = head_decl.substitution_group

    def _resolve_element(self, decl: ElementDecl) -> None:
        if decl.type is None:
            decl.type = self.type(decl.type_ref)
        if isinstance(decl.type, ComplexType):
            self._resolve_complex(decl.type)

    def type(self, qn: QName):
        if qn == (XS, "anyType"):
            raise XsdError("xs:anyType content is not supported")
        if qn in self.complex_types:
            ct = self.complex_types[qn]
            self._resolve_complex(ct)
            return ct
        return self.simple_type(qn)

    def _resolve_complex(self, ct: ComplexType) -> None:
        if ct.resolved:
            return
        ct.resolved = True
        for a in ct.own_attributes:
            if a.type is None:
                a.type = self.simple_type(a.type_ref)
        if ct.base_ref is None:
            ct.particle = ct.own_particle
            ct.attributes = list(ct.own_attributes)
            return
        kind = getattr(ct, "_content_kind", "complexContent")
        base = self.type(ct.base_ref)
        if isinstance(base, SimpleType):
            if kind != "simpleContent" or ct.derivation != "extension":
                raise XsdError(f"{ct.name}: only simpleContent extension of simple types supported")
            ct.simple_content = base
            ct.attributes = list(ct.own_attributes)
            return
        self._resolve_complex(base)
        if kind == "simpleContent":
            if base.simple_content is None:
                raise XsdError(f"{ct.name}: simpleContent based on a non-simple complex type")
            ct.simple_content = base.simple_content
            ct.attributes = _merge_attrs(base.attributes, ct.own_attributes)
            return
        if ct.derivation == "extension":
            if base.particle is None:
                ct.particle = ct.own_particle
            elif ct.own_particle is None:
                ct.particle = base.particle
            else:
                ct.particle = Particle(ModelGroup("sequence", [base.particle, ct.own_particle]))
            ct.attributes = _merge_attrs(base.attributes, ct.own_attributes)
            ct.mixed = ct.mixed or base.mixed
        else:
            ct.particle = ct.own_particle
            ct.attributes = _merge_attrs(base.attributes, ct.own_attributes)

    def _resolve_refs(self, p: Particle) -> None:
        t = p.term
        if isinstance(t, _Ref):
            decl = self.elements.get(t.name)
            if decl is None:
                raise XsdError(f"element ref {t.name} not found")
            p.term = decl
        elif isinstance(t, ModelGroup):
            for c in t.particles:
                self._resolve_refs(c)
        elif isinstance(t, ElementDecl) and isinstance(t.type, ComplexType) and t.type.particle is not None:
            # local elements with anonymous types are resolved via anonymous_types
            pass


@dataclass
class _Ctx:
    file: str
    tns: str
    qualified_elements: bool
    qualified_attributes: bool
    nsmap: dict


@dataclass(eq=False)
class _Ref:
    name: QName


def _locate(directory: Path, location: str) -> Path:
    """Resolve a schemaLocation; the published XSDs sit in per-standard folders that
    refer to a shared xmldsig-core-schema.xsd one level up, so look upwards too."""
    for d in (directory, *directory.parents):
        candidate = (d / location).resolve()
        if candidate.is_file():
            return candidate
    raise XsdError(f"schemaLocation {location!r} not found from {directory}")


def _merge_attrs(base: list[AttributeUse], own: list[AttributeUse]) -> list[AttributeUse]:
    out = {a.name: a for a in base}
    for a in own:
        out[a.name] = a
    return list(out.values())


def _max(a, b):
    return b if a is None else max(a, b)


def _min(a, b):
    return b if a is None else min(a, b)
