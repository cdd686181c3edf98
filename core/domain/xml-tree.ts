/**
 * fast-xml-parser's object tree, read safely: a node is a plain object, and an element's text may
 * come as a string or as a node with attributes and #text. Shared by the libvirt parsers and the
 * definition summary, which both read libvirt's XML.
 */
export type XmlNode = Record<string, unknown>;

export function isNode(value: unknown): value is XmlNode {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function asNode(value: unknown): XmlNode {
  return isNode(value) ? value : {};
}

/** An element's text whether fast-xml-parser gave a string or a node with attributes and #text. */
export function text(value: unknown): string | null {
  if (typeof value === "string") {
    return value;
  }
  if (isNode(value) && typeof value["#text"] === "string") {
    return value["#text"];
  }
  return null;
}
