import { XMLBuilder, XMLParser, XMLValidator } from "fast-xml-parser";
import { LAB_NAMESPACE } from "../drivers/libvirt/parse.js";
import { SnapkeepError } from "../errors.js";

/**
 * Turns the libvirt domain definition saved in an export bundle into the definition of a new VM
 * on import. The copy must be able to live next to the original (same host or not): everything
 * that identifies the original VM, or points at its storage and runtime state, is dropped or
 * redirected; everything else is kept as written so the copy behaves like the original.
 */

export interface ImportRewrite {
  /** The new VM's name. */
  readonly name: string;
  /** disk target dev (e.g. "vda") → new absolute source file path (qcow2). */
  readonly disks: ReadonlyMap<string, string>;
}

/**
 * One entry of fast-xml-parser's preserveOrder tree. An element is `{ [name]: children, ":@"?:
 * attributes }`; text, comments and CDATA sections use the reserved names below. The tree is
 * edited in place: it is parsed fresh for every call and never leaves this module.
 */
type OrderedNode = Record<string, unknown>;
type Attributes = Record<string, string>;

const TEXT = "#text";
const ATTRIBUTES = ":@";

// Shared by parser and builder, so whatever the parser keeps the builder writes back in place:
// comments, CDATA sections and the XML declaration survive, attributes keep their order.
const treeOptions = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  textNodeName: TEXT,
  commentPropName: "#comment",
  cdataPropName: "#cdata",
} as const;

const parser = new XMLParser({
  ...treeOptions,
  // Values stay strings exactly as written: a VM named "007" or " spaced ", the indentation.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  // Without it numeric character references (libxml2 writes `&#10;` for a newline inside a
  // metadata attribute) stay literal text, and the builder then writes them back as `&amp;#10;`.
  // The named HTML entities it also enables never get here: hasStrayAmpersand refuses them.
  htmlEntities: true,
});

const TEXT_ESCAPES = /[&<>\r]/g;
const ATTRIBUTE_ESCAPES = /[&<>"'\t\n\r]/g;
const ESCAPED: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
  "\t": "&#9;",
  "\n": "&#10;",
  "\r": "&#13;",
};

const builder = new XMLBuilder({
  ...treeOptions,
  // `<backingStore/>` rather than `<backingStore></backingStore>`: the same element to libvirt.
  suppressEmptyNode: true,
  // The builder's own escaping writes tabs, newlines and carriage returns raw, which an XML reader
  // turns into spaces (attributes) or newlines (a CR in text); the processors below escape them.
  processEntities: false,
  tagValueProcessor: (_name, value) => escape(String(value), TEXT_ESCAPES),
  attributeValueProcessor: (_name, value) => escape(String(value), ATTRIBUTE_ESCAPES),
});

export function rewriteDefinitionForImport(xml: string, rewrite: ImportRewrite): string {
  checkRewrite(rewrite);
  const tree = parseDefinition(xml);
  const domain = domainElement(tree);
  const top = childrenOf(domain);

  // The runtime id of a running domain (live dumpxml): the new VM gets its own when it starts.
  removeAttribute(domain, "id");
  setName(top, rewrite.name);
  // libvirt generates a new UUID; keeping the original's would make the copy the same VM to it.
  // A dynamic security label is assigned at start-up: the saved one is the original's.
  removeElements(
    top,
    (node, name) => name === "uuid" || (name === "seclabel" && attribute(node, "type") === "dynamic"),
  );
  // An empty <genid/> makes libvirt generate a fresh VM generation ID, which is how the guest
  // learns it is a copy (Windows, for one, then protects Active Directory replication and
  // reseeds its random numbers); virt-clone does the same.
  for (const genid of elements(top, "genid")) {
    childrenOf(genid).length = 0;
  }
  dropLabMarker(top);
  for (const os of elements(top, "os")) {
    resetNvram(childrenOf(os));
  }

  const devices = elements(top, "devices")[0];
  const deviceNodes = devices === undefined ? [] : childrenOf(devices);
  rewriteDisks(deviceNodes, rewrite.disks);
  for (const nic of elements(deviceNodes, "interface")) {
    // libvirt generates a new MAC; two VMs with one MAC on a network fight over its address.
    removeElements(childrenOf(nic), (_node, name) => name === "mac");
  }
  for (const graphics of elements(deviceNodes, "graphics")) {
    releaseGraphicsPorts(graphics);
  }

  const output = builder.build(tree);
  return output.endsWith("\n") ? output : `${output}\n`;
}

function checkRewrite(rewrite: ImportRewrite): void {
  if (rewrite.name.trim() === "") {
    throw new SnapkeepError("INVALID_INPUT", "The new VM's name is empty.");
  }
  // Only what XML itself cannot carry is refused here; libvirt judges the rest when it defines.
  if (!representableInXml(rewrite.name)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "The new VM's name contains a character XML cannot hold (a control character).",
    );
  }
  for (const [target, path] of rewrite.disks) {
    if (!path.startsWith("/")) {
      throw new SnapkeepError("INVALID_INPUT", `The new image path for ${target} is not absolute: ${path}`, {
        details: { target, path },
      });
    }
    if (!representableInXml(path)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `The new image path for ${target} contains a character XML cannot hold (a control character).`,
        {
          details: { target },
        },
      );
    }
  }
}

function notADomain(reason: string): SnapkeepError {
  return new SnapkeepError("INVALID_INPUT", "The export's VM definition is not a libvirt domain XML.", {
    details: { reason },
  });
}

function parseDefinition(xml: string): OrderedNode[] {
  // fast-xml-parser reads malformed XML without complaint (and its validator is lenient too):
  // checking first keeps a damaged bundle from turning into a different, "repaired" definition.
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw notADomain(`line ${valid.err.line}: ${valid.err.msg}`);
  }
  if (hasStrayAmpersand(xml)) {
    throw notADomain("it contains an & that starts no XML entity");
  }
  const tree: unknown = parser.parse(xml);
  if (!Array.isArray(tree)) {
    throw notADomain("it has no root element");
  }
  return tree as OrderedNode[];
}

/**
 * XML predefines five entities and numeric references. Anything else after an `&` (an HTML
 * `&nbsp;`, a DTD's own entity, a bare `&`) libvirt refuses, while the validator lets it through
 * and the parser keeps it as text that would be written back escaped: a silent change, not a
 * round trip. Comments, CDATA and processing instructions may hold a bare `&`.
 */
function hasStrayAmpersand(xml: string): boolean {
  const markup = xml.replace(/<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>/g, "");
  return /&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)/.test(markup);
}

function domainElement(tree: OrderedNode[]): OrderedNode {
  const roots = elements(tree, null);
  const root = roots[0];
  if (root === undefined || roots.length > 1) {
    throw notADomain("it has no single root element");
  }
  if (elementName(root) !== "domain") {
    throw notADomain(`its root element is <${elementName(root)}>, not <domain>`);
  }
  return root;
}

function setName(top: OrderedNode[], name: string): void {
  const existing = elements(top, "name")[0];
  if (existing === undefined) {
    insertBefore(top, element("name", {}, [{ [TEXT]: name }]), []);
    return;
  }
  const children = childrenOf(existing);
  children.splice(0, children.length, { [TEXT]: name });
}

/**
 * Drops the marker `snapkeep lab` puts on the VMs it creates: `lab down` deletes marked VMs and
 * their files, and an imported copy is the person's own VM. libvirt keeps each metadata element
 * with its namespace declared on the element itself, so that declaration identifies the marker
 * whatever prefix it was written with.
 */
function dropLabMarker(top: OrderedNode[]): void {
  for (const metadata of elements(top, "metadata")) {
    removeElements(childrenOf(metadata), (node, name) => {
      const colon = name.indexOf(":");
      const declaration = colon === -1 ? "xmlns" : `xmlns:${name.slice(0, colon)}`;
      return attribute(node, declaration) === LAB_NAMESPACE;
    });
  }
  // An empty <metadata/> is harmless, but libvirt would not write one either.
  removeElements(top, (node, name) => name === "metadata" && elements(childrenOf(node), null).length === 0);
}

/**
 * The UEFI variable store named by <nvram> is the original VM's file on the original host: it is
 * not in the export, and pointing the copy at it would let two VMs overwrite one store. Without a
 * path libvirt creates a fresh store for the new name from the firmware's template (Secure Boot
 * keys enrolled in the guest are therefore not carried over). A `template` someone chose is kept,
 * with the formats that go with it, so the fresh store comes from the same template.
 */
function resetNvram(osChildren: OrderedNode[]): void {
  const index = osChildren.findIndex((node) => elementName(node) === "nvram");
  const nvram = osChildren[index];
  if (nvram === undefined) {
    return;
  }
  if (attribute(nvram, "template") === undefined) {
    removeElements(osChildren, (node) => node === nvram);
    return;
  }
  const kept = Object.entries(attributesOf(nvram)).filter(([name]) =>
    ["template", "templateFormat", "format"].includes(name),
  );
  osChildren[index] = element("nvram", Object.fromEntries(kept), []);
}

function rewriteDisks(devices: OrderedNode[], disks: ReadonlyMap<string, string>): void {
  const hardDisks = elements(devices, "disk").filter(
    (disk) => (attribute(disk, "device") ?? "disk") === "disk",
  );
  const targets = hardDisks.map(diskTarget);
  const unknown = [...disks.keys()].filter((target) => !targets.includes(target));
  if (unknown.length > 0) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The export's VM definition has no hard disk ${unknown.join(", ")} to attach the imported image to.`,
      {
        hint: `Its hard disks are: ${targets.filter((t) => t !== undefined).join(", ") || "none"}.`,
        details: { targets: unknown },
      },
    );
  }
  for (const disk of hardDisks) {
    const path = disks.get(diskTarget(disk) ?? "");
    if (path !== undefined) {
      pointAtImage(disk, path);
    }
  }
  // A hard disk without an image was not exported; a CD-ROM or floppy is kept as it was, since
  // its medium (an ISO on the host) was never part of the VM's data.
  removeElements(devices, (node) => hardDisks.includes(node) && !disks.has(diskTarget(node) ?? ""));
}

function diskTarget(disk: OrderedNode): string | undefined {
  const target = elements(childrenOf(disk), "target")[0];
  return target === undefined ? undefined : attribute(target, "dev");
}

/** Points a hard disk at its imported image: a standalone qcow2 file. */
function pointAtImage(disk: OrderedNode, path: string): void {
  const children = childrenOf(disk);
  const wasFile = (attribute(disk, "type") ?? "file") === "file";
  setAttribute(disk, "type", "file");
  const sourceIndex = children.findIndex((node) => elementName(node) === "source");
  const source = children[sourceIndex];
  if (source === undefined) {
    insertBefore(children, element("source", { file: path }, []), ["target"]);
  } else if (wasFile) {
    setAttribute(source, "file", path);
    // The index numbers the original's backing chain in a live dumpxml; the new image has none.
    removeAttribute(source, "index");
  } else {
    // A block device, volume or network source names storage on the original host: all of it
    // (device path, pool, hosts, reservations) gives way to the file.
    children[sourceIndex] = element("source", { file: path }, []);
  }
  const driver = elements(children, "driver")[0];
  if (driver === undefined) {
    insertBefore(children, element("driver", { name: "qemu", type: "qcow2" }, []), ["source", "target"]);
  } else {
    setAttribute(driver, "type", "qcow2");
  }
  // The exported image is standalone; the original's chain (and its live <backingStore> entries)
  // no longer applies. Disk-level <auth> only ever authenticated a network source.
  removeElements(children, (_node, name) => name === "backingStore" || (!wasFile && name === "auth"));
}

/**
 * With autoport, the ports in a live dumpxml are the ones libvirt picked for that run: kept, the
 * copy would ask for a port the original may hold. A websocket is kept as a request for one, but
 * for any free port ("-1", what libvirt writes for an auto-allocated websocket in a saved
 * definition): dropping the attribute would switch the websocket off.
 */
function releaseGraphicsPorts(graphics: OrderedNode): void {
  if (attribute(graphics, "autoport") !== "yes") {
    return;
  }
  removeAttribute(graphics, "port");
  removeAttribute(graphics, "tlsPort");
  if (attribute(graphics, "websocket") !== undefined) {
    setAttribute(graphics, "websocket", "-1");
  }
}

// ---- the preserveOrder tree ----

/** The element's name, or null for text, comments, CDATA and processing instructions. */
function elementName(node: OrderedNode): string | null {
  const key = Object.keys(node).find((k) => k !== ATTRIBUTES);
  return key === undefined || key.startsWith("#") || key.startsWith("?") ? null : key;
}

/** The child elements named `name` (every child element for null). */
function elements(children: readonly OrderedNode[], name: string | null): OrderedNode[] {
  return children.filter((node) => {
    const nodeName = elementName(node);
    return nodeName !== null && (name === null || nodeName === name);
  });
}

function childrenOf(node: OrderedNode): OrderedNode[] {
  const name = elementName(node);
  const children = name === null ? undefined : node[name];
  if (!Array.isArray(children)) {
    // Never the case for a parsed element; an empty list keeps callers simple regardless.
    return [];
  }
  return children as OrderedNode[];
}

function attributesOf(node: OrderedNode): Attributes {
  const attributes = node[ATTRIBUTES];
  return typeof attributes === "object" && attributes !== null ? (attributes as Attributes) : {};
}

function attribute(node: OrderedNode, name: string): string | undefined {
  const value = attributesOf(node)[name];
  return typeof value === "string" ? value : undefined;
}

/** Replacing a value keeps the attribute where it was; a new attribute goes last. */
function setAttribute(node: OrderedNode, name: string, value: string): void {
  node[ATTRIBUTES] = { ...attributesOf(node), [name]: value };
}

function removeAttribute(node: OrderedNode, name: string): void {
  // An empty attribute map writes no attributes, so it need not go.
  node[ATTRIBUTES] = Object.fromEntries(Object.entries(attributesOf(node)).filter(([key]) => key !== name));
}

function element(name: string, attributes: Attributes, children: OrderedNode[]): OrderedNode {
  return Object.keys(attributes).length === 0
    ? { [name]: children }
    : { [name]: children, [ATTRIBUTES]: attributes };
}

function isIndentation(node: OrderedNode | undefined): node is OrderedNode {
  const text = node?.[TEXT];
  return typeof text === "string" && text.trim() === "";
}

/**
 * Removes the matching child elements together with the indentation in front of each, so the
 * result has no blank lines where they were.
 */
function removeElements(children: OrderedNode[], drop: (node: OrderedNode, name: string) => boolean): void {
  for (let i = children.length - 1; i >= 0; i--) {
    const node = children[i];
    const name = node === undefined ? null : elementName(node);
    if (node === undefined || name === null || !drop(node, name)) {
      continue;
    }
    const start = isIndentation(children[i - 1]) ? i - 1 : i;
    children.splice(start, i - start + 1);
    i = start;
  }
}

/**
 * Inserts `node` before the first child element named in `before` (else before the first child
 * element, else at the end), indented like the element it goes in front of.
 */
function insertBefore(children: OrderedNode[], node: OrderedNode, before: readonly string[]): void {
  const named = children.findIndex((child) => before.includes(elementName(child) ?? ""));
  const index = named !== -1 ? named : children.findIndex((child) => elementName(child) !== null);
  if (index === -1) {
    children.push(node);
    return;
  }
  const indentation = children[index - 1];
  children.splice(index, 0, ...(isIndentation(indentation) ? [node, { [TEXT]: indentation[TEXT] }] : [node]));
}

function escape(text: string, characters: RegExp): string {
  return text.replace(characters, (char) => ESCAPED[char] ?? char);
}

/**
 * False for characters no XML 1.0 document can hold, not even as a character reference: C0
 * controls other than tab, newline and CR, and what is not a Unicode scalar value.
 */
function representableInXml(text: string): boolean {
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    const control = code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d;
    if (control || (code >= 0xd800 && code <= 0xdfff) || code === 0xfffe || code === 0xffff) {
      return false;
    }
  }
  return true;
}
