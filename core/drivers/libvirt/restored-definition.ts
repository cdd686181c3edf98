import { XMLParser, XMLValidator } from "fast-xml-parser";
import { SnapkeepError } from "../../errors.js";

/**
 * Builds the libvirt definition of a restored VM from the domain XML saved in an export bundle.
 *
 * A bundle on a target (a NAS, an off-site box) is untrusted input, and a domain definition can
 * make the hypervisor run programs (`<emulator>`, `<qemu:commandline>`, a NIC's `<script>`), give
 * the guest host files or devices (`<filesystem>`, `<hostdev>`, block disks, kernel images, fw_cfg
 * entries) or write host files (a serial port's log). So the definition is rebuilt from an
 * allowlist: only what a restored VM needs is carried over, every value is checked against what
 * libvirt takes there, and everything else is dropped with a reason a person can read in the plan.
 * The only host paths in the result are the restored images and /dev/urandom.
 */

export interface DefinitionNote {
  /** What was kept or dropped, e.g. "serial port writing to /var/log/x". */
  readonly what: string;
  /** Why, e.g. "it writes to a file on the host". */
  readonly why: string;
}

/** The libvirt networks and host bridges a restored NIC may be attached to. */
export interface RestoreHost {
  readonly networks: readonly string[];
  readonly bridges: readonly string[];
}

export interface RestoreOptions {
  /** The new VM's name. */
  readonly name: string;
  /** Hard disk target dev (e.g. "vda") → absolute path of its restored qcow2 image. */
  readonly disks: ReadonlyMap<string, string>;
  readonly host: RestoreHost;
  /**
   * A restore drill's throwaway VM: every NIC joins this isolated network instead (whatever the
   * original used), no console listens, and the VM gets a guest agent channel and a screen when it
   * had none (the drill judges by the agent and keeps a screenshot), plus the drill's marker.
   */
  readonly isolate?: DrillIsolation;
}

export interface DrillIsolation {
  readonly network: string;
  /**
   * A UEFI VM's variable store, in the drill's own folder: libvirt makes it from this host's
   * template there (a transient VM's store in libvirt's folder outlives the VM), and the
   * teardown removes it with the folder.
   */
  readonly nvram: string;
  /**
   * Written into <metadata> as <drill:drill> with these attributes: the drill's id, the process
   * that runs it and when a leftover of it may be swept.
   */
  readonly marker: { readonly namespace: string; readonly attributes: Readonly<Record<string, string>> };
}

export interface RestoredDefinition {
  readonly xml: string;
  readonly kept: readonly DefinitionNote[];
  readonly dropped: readonly DefinitionNote[];
}

/**
 * One entry of fast-xml-parser's preserveOrder tree. An element is `{ [name]: children, ":@"?:
 * attributes }`; text, comments and CDATA sections use the reserved names below.
 */
type OrderedNode = Record<string, unknown>;

/** An element of the definition being built: only ever made from checked values. */
interface XmlElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  readonly text?: string;
}

const TEXT = "#text";
const CDATA = "#cdata";
const ATTRIBUTES = ":@";

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  textNodeName: TEXT,
  commentPropName: "#comment",
  cdataPropName: CDATA,
  // Values stay strings exactly as written: a VM named "007", a MAC, a PCI slot "0x01".
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  // Without it numeric character references (libxml2 writes `&#10;` for a newline in an
  // attribute) stay literal text. The named HTML entities it also enables never get here:
  // hasStrayAmpersand refuses them.
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

const QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0";
const URANDOM = "/dev/urandom";
const LOOPBACK = "127.0.0.1";
const GUEST_AGENT = "org.qemu.guest_agent.0";
const SPICE_AGENT = "com.redhat.spice.0";

export function buildRestoredDefinition(xml: string, options: RestoreOptions): RestoredDefinition {
  checkOptions(options);
  const domain = domainElement(parseDefinition(xml));
  const type = attribute(domain, "type");
  if (type !== "kvm" && type !== "qemu") {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The export's VM definition is for hypervisor type '${shown(type ?? "none")}'; Snapkeep restores QEMU/KVM VMs only.`,
    );
  }
  checkDiskTargets(domain, options.disks);

  const context = new Context(options, namespacesOf(domain));
  const sanitized = [
    element("name", {}, [], options.name),
    ...sanitizeChildren(childrenOf(domain), DOMAIN, context, "domain"),
  ];
  const children = options.isolate === undefined ? sanitized : isolated(sanitized, options.isolate);
  const restored = element("domain", { type }, children);
  return {
    xml: serialize(restored, 0),
    kept: keptNotes(restored),
    dropped: context.dropped(),
  };
}

/** The name and disks of a restored VM, for callers that do not list the host's networks yet. */
export interface ImportRewrite {
  readonly name: string;
  readonly disks: ReadonlyMap<string, string>;
  /** Without it, the networks and bridges the definition names are taken to exist on the host. */
  readonly host?: RestoreHost;
}

/** buildRestoredDefinition's XML alone. */
export function rewriteDefinitionForImport(xml: string, rewrite: ImportRewrite): string {
  const host = rewrite.host ?? networksNamedIn(xml);
  return buildRestoredDefinition(xml, { name: rewrite.name, disks: rewrite.disks, host }).xml;
}

function networksNamedIn(xml: string): RestoreHost {
  const domain = domainElement(parseDefinition(xml));
  const sources = elements(childrenOf(domain), "devices")
    .flatMap((devices) => elements(childrenOf(devices), "interface"))
    .flatMap((nic) => elements(childrenOf(nic), "source"));
  const named = (key: string): string[] =>
    sources.map((source) => attribute(source, key)).filter((value) => value !== undefined);
  return { networks: named("network"), bridges: named("bridge") };
}

/**
 * A drill's additions: the guest agent channel the drill waits on and a screen to capture, when
 * the definition has none, and the marker that lets a later drill sweep a leftover of this one.
 */
function isolated(children: readonly XmlElement[], isolate: DrillIsolation): XmlElement[] {
  const devices = children.find((c) => c.name === "devices");
  const has = (name: string, test: (e: XmlElement) => boolean = () => true): boolean =>
    devices?.children.some((c) => c.name === name && test(c)) === true;
  const extra = [
    ...(has("channel", (c) =>
      c.children.some((t) => t.name === "target" && t.attributes["name"] === GUEST_AGENT),
    )
      ? []
      : [
          element("channel", { type: "unix" }, [
            element("target", { type: "virtio", name: GUEST_AGENT }, []),
          ]),
        ]),
    ...(has("video") ? [] : [element("video", {}, [element("model", { type: "vga" }, [])])]),
  ];
  const withDevices = children.map((child) =>
    child === devices ? element("devices", child.attributes, [...child.children, ...extra]) : child,
  );
  const marker = element("metadata", {}, [
    element("drill:drill", { "xmlns:drill": isolate.marker.namespace, ...isolate.marker.attributes }, []),
  ]);
  const [name, ...rest] = withDevices;
  return [
    ...(name === undefined ? [] : [name]),
    marker,
    ...(devices === undefined ? [...rest, element("devices", {}, extra)] : rest),
  ];
}

// ---- input checks ----

function checkOptions(options: RestoreOptions): void {
  if (options.name.trim() === "") {
    throw new SnapkeepError("INVALID_INPUT", "The new VM's name is empty.");
  }
  // Only what XML itself cannot carry is refused here; libvirt judges the rest when it defines.
  if (!representableInXml(options.name)) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      "The new VM's name contains a character XML cannot hold (a control character).",
    );
  }
  for (const [target, path] of options.disks) {
    if (!path.startsWith("/")) {
      throw new SnapkeepError("INVALID_INPUT", `The new image path for ${target} is not absolute: ${path}`, {
        details: { target, path },
      });
    }
    if (!representableInXml(path)) {
      throw new SnapkeepError(
        "INVALID_INPUT",
        `The new image path for ${target} contains a character XML cannot hold (a control character).`,
        { details: { target } },
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
  let tree: unknown;
  try {
    tree = parser.parse(xml);
  } catch (error) {
    // The parser refuses names such as <constructor> or <__proto__> that could reach JavaScript's
    // own object properties; no libvirt element is named so.
    throw notADomain(error instanceof Error ? error.message : String(error));
  }
  if (!Array.isArray(tree)) {
    throw notADomain("it has no root element");
  }
  return tree as OrderedNode[];
}

/**
 * XML predefines five entities and numeric references. Anything else after an `&` (an HTML
 * `&nbsp;`, a DTD's own entity, a bare `&`) libvirt refuses, while the validator lets it through
 * and the parser keeps it as text. Comments, CDATA and processing instructions may hold a bare `&`.
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

function hardDisks(domain: OrderedNode): OrderedNode[] {
  return elements(childrenOf(domain), "devices")
    .flatMap((devices) => elements(childrenOf(devices), "disk"))
    .filter((disk) => (attribute(disk, "device") ?? "disk") === "disk");
}

function checkDiskTargets(domain: OrderedNode, disks: ReadonlyMap<string, string>): void {
  const targets = hardDisks(domain)
    .map(diskTarget)
    .filter((target) => target !== undefined);
  const unknown = [...disks.keys()].filter((target) => !targets.includes(target));
  if (unknown.length > 0) {
    throw new SnapkeepError(
      "INVALID_INPUT",
      `The export's VM definition has no hard disk ${unknown.join(", ")} to attach the imported image to.`,
      {
        hint: `Its hard disks are: ${targets.join(", ") || "none"}.`,
        details: { targets: unknown },
      },
    );
  }
}

function diskTarget(disk: OrderedNode): string | undefined {
  const target = firstChild(disk, "target");
  return target === undefined ? undefined : attribute(target, "dev");
}

/** Namespace prefix → URI, as declared on the root (where libvirt writes them). */
function namespacesOf(domain: OrderedNode): ReadonlyMap<string, string> {
  return new Map(
    Object.entries(attributesOf(domain))
      .filter(([key]) => key.startsWith("xmlns:"))
      .map(([key, uri]) => [key.slice("xmlns:".length), uri]),
  );
}

// ---- the allowlist ----

type Check = (value: string) => boolean;

const matches =
  (pattern: RegExp): Check =>
  (value) =>
    pattern.test(value);
const oneOf =
  (...values: string[]): Check =>
  (value) =>
    values.includes(value);

const INT = matches(/^[0-9]{1,12}$/);
const SIGNED_INT = matches(/^-?[0-9]{1,12}$/);
const HEX_OR_INT = matches(/^(?:0x[0-9a-fA-F]{1,8}|[0-9]{1,10})$/);
const WORD = matches(/^[A-Za-z0-9_.+-]{1,64}$/);
const YES_NO = oneOf("yes", "no");
const ON_OFF = oneOf("on", "off");
const UNIT = matches(/^(?:b|bytes|[kmgtpe](?:i?b)?)$/i);
const TARGET_DEV = matches(/^[a-z][a-z0-9]{1,15}$/);
const SINGLE_LINE: Check = (value) => representableInXml(value) && !/[\r\n]/.test(value);
const ANY_TEXT: Check = representableInXml;

/**
 * What an element may hold. Attributes and children not named here are dropped; an attribute or
 * text whose value fails its check is dropped with a note (the element too, for text).
 */
interface Rule {
  readonly attributes?: Readonly<Record<string, Check>>;
  readonly text?: Check;
  readonly children?: Readonly<Record<string, Rule | Handler>>;
  /** Children dropped with a reason of their own rather than "unknown". */
  readonly drops?: Readonly<Record<string, string | ((node: OrderedNode) => DefinitionNote)>>;
}

/** Builds (or drops, returning null) one element that a rule alone cannot describe. */
type Handler = (node: OrderedNode, context: Context) => XmlElement | null;

const ADDRESS: Rule = {
  attributes: {
    type: WORD,
    domain: HEX_OR_INT,
    bus: HEX_OR_INT,
    slot: HEX_OR_INT,
    function: HEX_OR_INT,
    multifunction: ON_OFF,
    controller: INT,
    target: INT,
    unit: INT,
    // USB ports behind hubs are dotted: "1.2".
    port: matches(/^[0-9]{1,5}(?:\.[0-9]{1,5}){0,4}$/),
    reg: HEX_OR_INT,
    cssid: HEX_OR_INT,
    ssid: HEX_OR_INT,
    devno: HEX_OR_INT,
    iobase: HEX_OR_INT,
    irq: HEX_OR_INT,
  },
};

const SIZE: Rule = { attributes: { unit: UNIT }, text: INT };
const STATE: Rule = { attributes: { state: ON_OFF } };
const BOOT: Rule = { attributes: { order: INT } };

const HYPERV: Rule = {
  attributes: { mode: oneOf("custom", "passthrough") },
  children: {
    relaxed: STATE,
    vapic: STATE,
    spinlocks: { attributes: { state: ON_OFF, retries: INT } },
    vpindex: STATE,
    runtime: STATE,
    synic: STATE,
    stimer: { attributes: { state: ON_OFF }, children: { direct: STATE } },
    reset: STATE,
    vendor_id: { attributes: { state: ON_OFF, value: matches(/^[A-Za-z0-9_ -]{1,12}$/) } },
    frequencies: STATE,
    reenlightenment: STATE,
    tlbflush: { attributes: { state: ON_OFF }, children: { direct: STATE, extended: STATE } },
    ipi: STATE,
    evmcs: STATE,
    avic: STATE,
    emsr_bitmap: STATE,
    xmm_input: STATE,
  },
};

const FEATURES: Rule = {
  children: {
    acpi: {},
    apic: { attributes: { eoi: ON_OFF } },
    pae: {},
    hap: STATE,
    privnet: {},
    viridian: {},
    hyperv: HYPERV,
    kvm: {
      children: {
        hidden: STATE,
        "hint-dedicated": STATE,
        "poll-control": STATE,
        "pv-ipi": STATE,
        "dirty-ring": { attributes: { state: ON_OFF, size: INT } },
      },
    },
    pvspinlock: STATE,
    vmport: STATE,
    smm: { attributes: { state: ON_OFF }, children: { tseg: SIZE } },
    ioapic: { attributes: { driver: oneOf("kvm", "qemu") } },
    vmcoreinfo: STATE,
    pmu: STATE,
    htm: STATE,
    "nested-hv": STATE,
    "ccf-assist": STATE,
    cfpc: { attributes: { value: WORD } },
    sbbc: { attributes: { value: WORD } },
    ibs: { attributes: { value: WORD } },
    gic: { attributes: { version: oneOf("2", "3", "host") } },
    hpt: { attributes: { resizing: WORD }, children: { maxpagesize: SIZE } },
    msrs: { attributes: { unknown: oneOf("ignore", "fault") } },
    "async-teardown": { attributes: { enabled: YES_NO } },
    ps2: STATE,
    ras: STATE,
    tcg: { children: { "tb-cache": SIZE } },
  },
};

const CPU: Rule = {
  attributes: {
    mode: oneOf("custom", "host-model", "host-passthrough", "maximum"),
    match: oneOf("minimum", "exact", "strict"),
    check: oneOf("none", "partial", "full"),
    migratable: ON_OFF,
  },
  children: {
    model: { attributes: { fallback: oneOf("allow", "forbid"), vendor_id: WORD }, text: WORD },
    vendor: { text: WORD },
    topology: { attributes: { sockets: INT, dies: INT, clusters: INT, cores: INT, threads: INT } },
    feature: {
      attributes: { policy: oneOf("force", "require", "optional", "disable", "forbid"), name: WORD },
    },
    cache: { attributes: { level: INT, mode: oneOf("emulate", "passthrough", "disable") } },
    maxphysaddr: { attributes: { mode: oneOf("emulate", "passthrough"), bits: INT, limit: INT } },
    // The guest's own NUMA layout: guest hardware, unlike <numatune>, which pins to host nodes.
    numa: {
      children: {
        cell: {
          attributes: {
            id: INT,
            cpus: matches(/^[0-9,^ -]{1,128}$/),
            memory: INT,
            unit: UNIT,
            memAccess: oneOf("shared", "private"),
            discard: YES_NO,
          },
          children: {
            distances: { children: { sibling: { attributes: { id: INT, value: INT } } } },
          },
        },
      },
    },
  },
};

const CLOCK: Rule = {
  attributes: {
    offset: oneOf("utc", "localtime", "timezone", "variable"),
    adjustment: matches(/^(?:-?[0-9]{1,12}|reset)$/),
    basis: oneOf("utc", "localtime"),
    timezone: matches(/^[A-Za-z0-9_+-]{1,32}(?:\/[A-Za-z0-9_+-]{1,32}){0,2}$/),
  },
  children: {
    timer: {
      attributes: {
        name: oneOf("platform", "pit", "rtc", "hpet", "kvmclock", "hypervclock", "tsc", "armvtimer"),
        present: YES_NO,
        tickpolicy: oneOf("delay", "catchup", "merge", "discard"),
        track: oneOf("boot", "guest", "wall", "realtime"),
        frequency: INT,
        mode: oneOf("auto", "native", "emulate", "paravirt", "smpsafe"),
      },
      children: { catchup: { attributes: { threshold: INT, slew: INT, limit: INT } } },
    },
  },
};

// coredump-destroy and coredump-restart write the guest's memory to the host's disk.
const LIFECYCLE: Rule = { text: oneOf("destroy", "restart", "preserve", "rename-restart") };

const HOST_TUNING = "it tunes the VM to the original host's CPUs, memory or storage";

/** What the domain's direct children may be. */
const DOMAIN: Rule = {
  children: {
    // Written first, from the options.
    name: () => null,
    title: { text: SINGLE_LINE },
    description: { text: ANY_TEXT },
    // Emptied: libvirt then makes a new VM generation ID, which is how a guest learns it is a copy
    // (Windows, for one, then protects Active Directory replication and reseeds its random numbers).
    genid: () => element("genid", {}, []),
    memory: SIZE,
    currentMemory: SIZE,
    maxMemory: { attributes: { unit: UNIT, slots: INT }, text: INT },
    // No cpuset: CPU numbers of the original host.
    vcpu: { attributes: { placement: oneOf("static"), current: INT }, text: INT },
    cpu: CPU,
    os: restoreOs,
    features: FEATURES,
    clock: CLOCK,
    on_poweroff: LIFECYCLE,
    on_reboot: LIFECYCLE,
    on_crash: LIFECYCLE,
    pm: {
      children: {
        "suspend-to-mem": { attributes: { enabled: YES_NO } },
        "suspend-to-disk": { attributes: { enabled: YES_NO } },
      },
    },
    devices: restoreDevices,
  },
  drops: {
    uuid: (node) => ({ what: `UUID ${shown(textOf(node))}`, why: "libvirt gives the restored VM a new one" }),
    metadata: "notes other programs kept about the original VM",
    seclabel: "this host's libvirt labels the VM itself",
    memoryBacking: "huge pages and shared or file-backed memory depend on the host",
    memtune: HOST_TUNING,
    blkiotune: HOST_TUNING,
    cputune: HOST_TUNING,
    numatune: HOST_TUNING,
    iothreads: HOST_TUNING,
    iothreadids: HOST_TUNING,
    defaultiothread: HOST_TUNING,
    resource: HOST_TUNING,
    throttlegroups: HOST_TUNING,
    sysinfo: "it gives the guest made-up hardware details and can hand it files of the host",
    idmap: "it maps user IDs of the original host",
    keywrap: "it belongs to the original host's crypto hardware",
    launchSecurity: "confidential-computing settings are tied to the original host",
    bootloader: "it runs a program on the host",
    bootloader_args: "it only applies to <bootloader>, a program on the host",
    on_lockfailure: "it belongs to lock leases on the original host",
  },
};

const CONTROLLER: Rule = {
  attributes: {
    type: oneOf("ide", "fdc", "scsi", "sata", "usb", "ccid", "virtio-serial", "pci", "isa", "xenbus"),
    index: INT,
    model: WORD,
    ports: INT,
    vectors: INT,
  },
  children: {
    address: ADDRESS,
    driver: {
      attributes: {
        queues: INT,
        cmd_per_lun: INT,
        max_sectors: INT,
        ioeventfd: ON_OFF,
        event_idx: ON_OFF,
      },
    },
    target: {
      attributes: {
        chassisNr: INT,
        chassis: INT,
        port: HEX_OR_INT,
        busNr: INT,
        index: INT,
        hotplug: ON_OFF,
        memReserve: INT,
      },
    },
    model: { attributes: { name: WORD } },
    master: { attributes: { startport: INT } },
    pcihole64: SIZE,
  },
};

const INPUT: Rule = {
  attributes: {
    type: oneOf("mouse", "keyboard", "tablet"),
    bus: oneOf("ps2", "usb", "virtio", "xen"),
    model: WORD,
  },
  children: { address: ADDRESS },
};

const VIDEO: Rule = {
  children: {
    model: {
      attributes: {
        type: oneOf("vga", "cirrus", "qxl", "virtio", "bochs", "ramfb", "none"),
        vram: INT,
        ram: INT,
        vram64: INT,
        vgamem: INT,
        heads: INT,
        primary: YES_NO,
      },
      children: { resolution: { attributes: { x: INT, y: INT } } },
      drops: { acceleration: "3D acceleration uses the host's graphics device" },
    },
    address: ADDRESS,
  },
  drops: { driver: "a vhost-user video driver runs a helper program on the host" },
};

const MEMBALLOON: Rule = {
  attributes: {
    model: oneOf("virtio", "virtio-transitional", "virtio-non-transitional", "xen", "none"),
    autodeflate: ON_OFF,
    freePageReporting: ON_OFF,
  },
  children: { stats: { attributes: { period: INT } }, address: ADDRESS },
};

const WATCHDOG: Rule = {
  // Not "dump": it writes the guest's memory to the host's disk.
  attributes: {
    model: oneOf("i6300esb", "ib700", "diag288", "itco"),
    action: oneOf("reset", "shutdown", "poweroff", "pause", "none", "inject-nmi"),
  },
  children: { address: ADDRESS },
};

const SOUND: Rule = {
  attributes: {
    model: oneOf("ich6", "ich7", "ich9", "ac97", "es1370", "sb16", "pcspk", "usb"),
  },
  // Its <audio id> would name an output that may have been dropped; libvirt picks one.
  children: {
    codec: { attributes: { type: oneOf("duplex", "micro", "output") } },
    address: ADDRESS,
    audio: () => null,
  },
};

const UNKNOWN_DEVICE =
  "Snapkeep does not restore this kind of device; add it again after the restore if needed";

const DEVICES: Rule = {
  children: {
    disk: restoreDisk,
    interface: restoreInterface,
    controller: CONTROLLER,
    input: restoreInput,
    graphics: restoreGraphics,
    video: VIDEO,
    channel: restoreChannel,
    serial: restoreTerminal,
    console: restoreTerminal,
    parallel: restoreTerminal,
    rng: restoreRng,
    tpm: restoreTpm,
    memballoon: MEMBALLOON,
    watchdog: WATCHDOG,
    panic: {
      attributes: { model: oneOf("isa", "pseries", "hyperv", "s390", "pvpanic") },
      children: { address: ADDRESS },
    },
    hub: { attributes: { type: oneOf("usb") }, children: { address: ADDRESS } },
    sound: SOUND,
    audio: restoreAudio,
    redirdev: restoreRedirdev,
  },
  drops: {
    emulator: (node) => ({
      what: `emulator ${shown(textOf(node).trim())}`,
      why: "it names a program for the host to run; libvirt uses this host's own QEMU",
    }),
    filesystem: (node) => ({
      what: `shared folder ${shown(sourceOf(node) ?? "")}`.trimEnd(),
      why: "it gives the guest a folder of the host",
    }),
    hostdev: (node) => {
      const type = attribute(node, "type");
      return {
        what: type === undefined ? "host device" : `host ${shown(type).toUpperCase()} device`,
        why: "it hands a device of the host to the guest",
      };
    },
    smartcard: "it gives the guest the host's smartcard reader or a host socket",
    shmem: "it shares memory with programs on the host",
    memory:
      "extra memory modules (an NVDIMM is a file on the host); add them again after the restore if needed",
    lease: "it is a lock file on the original host",
    pstore: "it keeps the guest's crash logs in a file on the host",
    iommu: UNKNOWN_DEVICE,
    vsock: UNKNOWN_DEVICE,
    crypto: UNKNOWN_DEVICE,
    nvram: UNKNOWN_DEVICE,
  },
};

// ---- the generic sanitizer ----

class Context {
  readonly #dropped = new Map<string, DefinitionNote>();

  constructor(
    readonly options: RestoreOptions,
    readonly namespaces: ReadonlyMap<string, string>,
  ) {}

  drop(note: DefinitionNote): void {
    // The same note twice (two security labels of one model, say) says nothing more.
    this.#dropped.set(`${note.what}\n${note.why}`, note);
  }

  dropped(): DefinitionNote[] {
    return [...this.#dropped.values()];
  }
}

function sanitize(node: OrderedNode, rule: Rule, context: Context): XmlElement | null {
  const name = elementName(node) ?? "";
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributesOf(node))) {
    const check = own(rule.attributes, key);
    if (check === undefined) {
      // Runtime state (a live XML's ids and indexes) and everything not allowlisted.
      continue;
    }
    if (!check(value)) {
      // Without the attribute the element could mean something else, or nothing libvirt takes.
      return dropNode(context, `<${name} ${key}='${shown(value)}'>`, notAccepted(name));
    }
    attributes[key] = value;
  }
  const text = textOf(node).trim();
  if (rule.text !== undefined && text !== "") {
    if (!rule.text(text)) {
      return dropNode(context, `<${name}>${shown(text)}</${name}>`, notAccepted(name));
    }
    return element(name, attributes, [], text);
  }
  return element(name, attributes, sanitizeChildren(childrenOf(node), rule, context, name));
}

function notAccepted(name: string): string {
  return `Snapkeep does not accept that value there, so the whole <${name}> is left out`;
}

function sanitizeChildren(
  children: readonly OrderedNode[],
  rule: Rule,
  context: Context,
  parent: string,
): XmlElement[] {
  const built: XmlElement[] = [];
  for (const child of elements(children, null)) {
    const name = elementName(child) ?? "";
    const allowed = own(rule.children, name);
    if (allowed !== undefined) {
      const result =
        typeof allowed === "function" ? allowed(child, context) : sanitize(child, allowed, context);
      if (result !== null) {
        built.push(result);
      }
    } else if (name !== "alias") {
      // <alias> names a device of a running VM; libvirt names the restored VM's devices itself.
      context.drop(droppedChild(child, name, rule, parent, context));
    }
  }
  return built;
}

function droppedChild(
  node: OrderedNode,
  name: string,
  rule: Rule,
  parent: string,
  context: Context,
): DefinitionNote {
  const colon = name.indexOf(":");
  if (colon !== -1) {
    const prefix = name.slice(0, colon);
    const uri = attribute(node, `xmlns:${prefix}`) ?? context.namespaces.get(prefix);
    return { what: `<${shown(name)}>`, why: namespacedWhy(name.slice(colon + 1), uri) };
  }
  const reason = own(rule.drops, name);
  const where =
    parent === "domain" || parent === "devices" ? `<${shown(name)}>` : `<${shown(name)}> in <${parent}>`;
  if (typeof reason === "function") {
    return reason(node);
  }
  return { what: where, why: reason ?? "Snapkeep does not know it, so it is not restored" };
}

function namespacedWhy(localName: string, uri: string | undefined): string {
  if (uri !== QEMU_NAMESPACE) {
    return "it belongs to another program's XML namespace, which Snapkeep does not check";
  }
  return localName === "commandline"
    ? "it passes arguments straight to QEMU"
    : "it passes settings straight to QEMU, past libvirt's checks";
}

// ---- <os> ----

const OS_CHILDREN: Rule = {
  children: {
    boot: { attributes: { dev: oneOf("hd", "fd", "cdrom", "network") } },
    bootmenu: { attributes: { enable: YES_NO, timeout: INT } },
    bios: { attributes: { useserial: YES_NO, rebootTimeout: SIGNED_INT } },
    firmware: {
      children: {
        feature: { attributes: { enabled: YES_NO, name: oneOf("secure-boot", "enrolled-keys") } },
      },
    },
    // Handled in restoreOs, which sees the whole <os>.
    type: () => null,
    loader: () => null,
    nvram: () => null,
  },
  drops: {
    kernel: (node) => ({
      what: `kernel ${shown(textOf(node).trim())}`,
      why: "it boots a kernel file of the host",
    }),
    initrd: (node) => ({ what: `initrd ${shown(textOf(node).trim())}`, why: "it loads a file of the host" }),
    dtb: (node) => ({
      what: `device tree ${shown(textOf(node).trim())}`,
      why: "it loads a file of the host",
    }),
    cmdline: "it only applies to a kernel booted from a file of the host",
    acpi: "its ACPI tables are files of the host",
    smbios: "it gives the guest the host's hardware details or made-up ones; the VM gets QEMU's own",
  },
};

const OS_TYPE: Rule = { attributes: { arch: WORD, machine: WORD }, text: oneOf("hvm") };

/**
 * Firmware is a file of the host, so its path never survives: UEFI becomes firmware='efi' and
 * libvirt picks this host's OVMF (and makes a fresh variable store), BIOS is the host's default.
 */
function restoreOs(os: OrderedNode, context: Context): XmlElement {
  const children = childrenOf(os);
  const loader = elements(children, "loader")[0];
  const nvram = elements(children, "nvram")[0];
  const declared = attribute(os, "firmware");
  const uefi =
    declared === "efi" ||
    (declared !== "bios" &&
      (nvram !== undefined || (loader !== undefined && attribute(loader, "type") === "pflash")));

  const restored: XmlElement[] = [];
  const type = elements(children, "type")[0];
  const builtType = type === undefined ? null : sanitize(type, OS_TYPE, context);
  if (builtType !== null) {
    restored.push(builtType);
  }
  restored.push(...sanitizeChildren(children, OS_CHILDREN, context, "os"));
  const loaderPath = loader === undefined ? "" : textOf(loader).trim();
  if (loaderPath !== "") {
    context.drop({
      what: `firmware file ${shown(loaderPath)}`,
      why: uefi
        ? "it is a file of the original host; libvirt picks this host's own UEFI firmware"
        : "it is a file of the original host; the VM starts with this host's default BIOS",
    });
  }
  // libvirt 9.0 refuses every other loader attribute while it picks the firmware itself.
  if (uefi && loader !== undefined && attribute(loader, "secure") === "yes") {
    restored.push(element("loader", { secure: "yes" }, []));
  }
  if (nvram !== undefined) {
    const path = textOf(nvram).trim();
    const template = attribute(nvram, "template");
    context.drop({
      what: `UEFI variable store ${shown(path || template || "")}`.trimEnd(),
      why:
        "it is a file of the original host; libvirt makes a fresh store from this host's template " +
        "(boot entries and keys saved in the firmware start from the defaults)",
    });
  }
  const isolate = context.options.isolate;
  if (uefi && isolate !== undefined) {
    restored.push(element("nvram", {}, [], isolate.nvram));
  }
  return element(
    "os",
    uefi ? { firmware: "efi" } : declared === "bios" ? { firmware: "bios" } : {},
    restored,
  );
}

// ---- <devices> ----

function restoreDevices(devices: OrderedNode, context: Context): XmlElement {
  return element("devices", {}, sanitizeChildren(childrenOf(devices), DEVICES, context, "devices"));
}

const DISK_DRIVER: Readonly<Record<string, Check>> = {
  cache: oneOf("default", "none", "writethrough", "writeback", "directsync", "unsafe"),
  discard: oneOf("unmap", "ignore"),
  io: oneOf("threads", "native", "io_uring"),
  detect_zeroes: oneOf("off", "on", "unmap"),
  queues: INT,
};
const DISK_BUS = oneOf("virtio", "sata", "scsi", "ide", "usb", "sd", "fdc");
const DISK_SERIAL = matches(/^[A-Za-z0-9_ .+-]{1,36}$/);
const BLOCKIO: Rule = { attributes: { logical_block_size: INT, physical_block_size: INT } };

/**
 * A hard disk with a restored image is rebuilt around that image; any other hard disk, and every
 * LUN, stays behind. A CD-ROM or floppy drive stays, empty: its medium was a file on the original
 * host, never part of the VM's data, and a guest may expect the drive.
 */
function restoreDisk(disk: OrderedNode, context: Context): XmlElement | null {
  const device = attribute(disk, "device") ?? "disk";
  const target = firstChild(disk, "target");
  const dev = target === undefined ? undefined : attribute(target, "dev");
  const source = sourceOf(disk);
  const described = [
    dev === undefined ? "" : ` ${shown(dev)}`,
    source === undefined ? "" : ` (${shown(source)})`,
  ].join("");
  if (device === "lun") {
    return dropNode(context, `LUN${described}`, "it hands a SCSI device of the host to the guest");
  }
  if (target === undefined || dev === undefined || !TARGET_DEV(dev)) {
    return dropNode(context, `${device}${described}`, "it has no target name Snapkeep accepts");
  }
  const bus = attribute(target, "bus");
  const targetAttributes = bus !== undefined && DISK_BUS(bus) ? { dev, bus } : { dev };
  const common = [
    ...sanitizeFirst(disk, "boot", BOOT, context),
    ...sanitizeFirst(disk, "address", ADDRESS, context),
  ];
  if (device === "cdrom" || device === "floppy") {
    const drive = device === "cdrom" ? "CD-ROM" : "floppy";
    if (source !== undefined) {
      context.drop({
        what: `${device === "cdrom" ? "disc" : "floppy image"} ${shown(source)} in ${drive} drive ${dev}`,
        why: "it is a file or device of the original host; the drive is kept empty",
      });
    }
    return element("disk", { type: "file", device }, [
      element("target", targetAttributes, []),
      ...(device === "cdrom" ? [element("readonly", {}, [])] : []),
      ...common,
    ]);
  }
  if (device !== "disk") {
    return dropNode(context, `${device}${described}`, "Snapkeep does not know this kind of disk");
  }
  const image = context.options.disks.get(dev);
  if (image === undefined) {
    return dropNode(context, `disk${described}`, "its image is not part of this restore");
  }
  const driver = firstChild(disk, "driver");
  const tuning = Object.entries(driver === undefined ? {} : attributesOf(driver)).filter(([key, value]) => {
    const check = own(DISK_DRIVER, key);
    return check !== undefined && check(value);
  });
  const serial = firstChild(disk, "serial");
  const serialText = serial === undefined ? "" : textOf(serial).trim();
  return element("disk", { type: "file", device: "disk" }, [
    element("driver", { name: "qemu", type: "qcow2", ...Object.fromEntries(tuning) }, []),
    element("source", { file: image }, []),
    element("target", targetAttributes, []),
    ...sanitizeFirst(disk, "blockio", BLOCKIO, context),
    ...(DISK_SERIAL(serialText) ? [element("serial", {}, [], serialText)] : []),
    ...common,
  ]);
}

const NIC_MODEL = matches(/^[a-z0-9_-]{1,32}$/);
const NIC_DRIVER: Rule = {
  attributes: { name: oneOf("vhost", "qemu"), queues: INT, rx_queue_size: INT, tx_queue_size: INT },
};

/**
 * A NIC is rebuilt on a network or bridge this host has (or as user-mode networking), without its
 * MAC: libvirt makes a new one, and two VMs with one MAC on a network fight over its address.
 */
function restoreInterface(nic: OrderedNode, context: Context): XmlElement | null {
  let type = attribute(nic, "type") ?? "";
  const source = firstChild(nic, "source");
  const { networks, bridges } = context.options.host;
  const isolate = context.options.isolate;
  let attachment: Record<string, string> | null;
  if (isolate !== undefined && ["network", "bridge", "user"].includes(type)) {
    // A drill's copy must never meet the original's network (same addresses, same services).
    type = "network";
    attachment = { network: isolate.network };
  } else if (type === "network") {
    const network = source === undefined ? "" : (attribute(source, "network") ?? "");
    if (!networks.includes(network)) {
      return dropNode(
        context,
        `NIC on network '${shown(network)}'`,
        `no network '${shown(network)}' on this host; add a NIC after the restore`,
      );
    }
    attachment = { network };
  } else if (type === "bridge") {
    const bridge = source === undefined ? "" : (attribute(source, "bridge") ?? "");
    if (!bridges.includes(bridge)) {
      return dropNode(
        context,
        `NIC on bridge '${shown(bridge)}'`,
        `no bridge '${shown(bridge)}' on this host; add a NIC after the restore`,
      );
    }
    attachment = { bridge };
  } else if (type === "user") {
    attachment = null;
  } else {
    return dropNode(
      context,
      `NIC of type '${shown(type)}'`,
      own(NIC_TYPE_WHY, type) ?? "Snapkeep does not restore this kind of NIC",
    );
  }
  for (const [child, why] of Object.entries(NIC_CHILD_WHY)) {
    const dropped = firstChild(nic, child);
    if (dropped !== undefined) {
      const detail = ["path", "filter", "type", "tap", "proto"]
        .map((key) => attribute(dropped, key))
        .find((value) => value !== undefined);
      context.drop({ what: `NIC ${child}${detail === undefined ? "" : ` ${shown(detail)}`}`, why });
    }
  }
  const model = firstChild(nic, "model");
  const modelType = model === undefined ? undefined : attribute(model, "type");
  return element("interface", { type }, [
    ...(attachment === null ? [] : [element("source", attachment, [])]),
    ...(modelType !== undefined && NIC_MODEL(modelType) ? [element("model", { type: modelType }, [])] : []),
    ...sanitizeFirst(nic, "driver", NIC_DRIVER, context),
    ...sanitizeFirst(nic, "mtu", { attributes: { size: INT } }, context),
    ...sanitizeFirst(nic, "link", { attributes: { state: oneOf("up", "down") } }, context),
    ...sanitizeFirst(nic, "boot", BOOT, context),
    ...sanitizeFirst(nic, "address", ADDRESS, context),
  ]);
}

const NIC_TYPE_WHY: Readonly<Record<string, string>> = {
  direct: "it attaches straight to a network device of the host (macvtap)",
  ethernet: "it uses a tap device of the host and can run a script there",
  vhostuser: "it connects to a socket on the host",
  hostdev: "it hands a network card of the host to the guest",
  vdpa: "it uses a device of the host",
  server: "it opens a socket on the host",
  client: "it opens a socket on the host",
  mcast: "it opens a socket on the host",
  udp: "it opens a socket on the host",
};

// Children worth a word; the rest (MAC, target dev, runtime state) libvirt sets again by itself.
const NIC_CHILD_WHY: Readonly<Record<string, string>> = {
  script: "it runs a program on the host",
  filterref: "Snapkeep does not check this host's network filters; set it again after the restore if wanted",
  backend: "it names host devices or a helper program; the NIC uses QEMU's own",
  portForward: "it forwards ports of the host to the guest",
  bandwidth: "it is a traffic limit on the host side; set it again after the restore if wanted",
};

function restoreInput(input: OrderedNode, context: Context): XmlElement | null {
  const type = attribute(input, "type") ?? "";
  if (type === "passthrough" || type === "evdev") {
    const device = sourceOf(input);
    return dropNode(
      context,
      `host input device${device === undefined ? "" : ` ${shown(device)}`}`,
      "it hands an input device of the host to the guest",
    );
  }
  if (!["mouse", "keyboard", "tablet"].includes(type)) {
    return dropNode(context, `input of type '${shown(type)}'`, "Snapkeep does not know this kind of input");
  }
  return sanitize(input, INPUT, context);
}

/**
 * A console is rebuilt to listen on the loopback address only, on a port libvirt picks: the
 * original may have listened on every address, and a fixed port may be taken by the original.
 */
function restoreGraphics(graphics: OrderedNode, context: Context): XmlElement | null {
  const type = attribute(graphics, "type") ?? "";
  if (context.options.isolate !== undefined && (type === "vnc" || type === "spice")) {
    // Kept, listening nowhere: SPICE's channels, USB redirection and audio need a SPICE display to
    // start at all, and a drill's VM opens no console port.
    context.drop({
      what: `${type === "vnc" ? "VNC" : "SPICE"} console port`,
      why: "a drill's VM listens nowhere; its screen is captured",
    });
    return element("graphics", { type }, [element("listen", { type: "none" }, [])]);
  }
  if (type !== "vnc" && type !== "spice") {
    return dropNode(
      context,
      `${shown(type)} graphics`,
      own(GRAPHICS_WHY, type) ?? "Snapkeep restores VNC and SPICE consoles only",
    );
  }
  const label = type === "vnc" ? "VNC" : "SPICE";
  const listens = new Set(
    [attribute(graphics, "listen"), ...elements(childrenOf(graphics), "listen").map(listenedOn)].filter(
      (value): value is string => value !== undefined && !["127.0.0.1", "localhost", "::1"].includes(value),
    ),
  );
  if (listens.size > 0) {
    context.drop({
      what: `${label} console listening on ${[...listens].map(shown).join(", ")}`,
      why: "it now listens on 127.0.0.1 only; reach it from this host or through SSH",
    });
  }
  if (attribute(graphics, "passwd") !== undefined) {
    context.drop({
      what: `${label} password`,
      why: "it was the original VM's; set a new one after the restore if wanted",
    });
  }
  const port = attribute(graphics, "port");
  if (attribute(graphics, "autoport") === "no" && port !== undefined) {
    context.drop({
      what: `fixed ${label} port ${shown(port)}`,
      why: "libvirt picks a free port, so it never clashes with the original",
    });
  }
  const keymap = attribute(graphics, "keymap");
  const websocket = type === "vnc" && attribute(graphics, "websocket") !== undefined;
  return element(
    "graphics",
    {
      type,
      autoport: "yes",
      // A websocket is kept as a request for one on any free port ("-1"): without the attribute
      // the websocket would be switched off.
      ...(websocket ? { websocket: "-1" } : {}),
      listen: LOOPBACK,
      ...(keymap !== undefined && matches(/^[a-z]{2}(?:-[a-z]{2,4})?$/)(keymap) ? { keymap } : {}),
    },
    [element("listen", { type: "address", address: LOOPBACK }, [])],
  );
}

/**
 * Where a <listen> listens, or undefined for libvirt's default (this host's qemu.conf, loopback
 * unless changed) and for no listening at all.
 */
function listenedOn(listen: OrderedNode): string | undefined {
  const network = attribute(listen, "network");
  const socket = attribute(listen, "socket");
  switch (attribute(listen, "type")) {
    case "address":
      return attribute(listen, "address");
    case "network":
      return network === undefined ? undefined : `network '${network}'`;
    case "socket":
      return socket === undefined ? "a socket on the host" : `socket ${socket}`;
    default:
      return undefined;
  }
}

const GRAPHICS_WHY: Readonly<Record<string, string>> = {
  sdl: "it opens a window on the host's display",
  "egl-headless": "it renders on a graphics device of the host",
  dbus: "it talks to a D-Bus bus on the host",
};

/** Where a serial port, console, parallel port or channel of a type other than pty leads. */
function terminalNote(kind: string, node: OrderedNode, otherWhy: string): DefinitionNote {
  const type = attribute(node, "type") ?? "pty";
  const source = firstChild(node, "source");
  const path = shown(
    (source === undefined ? undefined : (attribute(source, "path") ?? attribute(source, "host"))) ?? "",
  );
  switch (type) {
    case "file":
      return { what: `${kind} writing to ${path}`, why: "it writes to a file on the host" };
    case "unix":
      return { what: `${kind} on socket ${path}`, why: "it opens a socket on the host" };
    case "tcp":
    case "udp": {
      const service = source === undefined ? undefined : attribute(source, "service");
      return {
        what: `${kind} on ${type.toUpperCase()} ${path}${service === undefined ? "" : `:${shown(service)}`}`,
        why: "it opens a network port on the host",
      };
    }
    case "dev":
      return { what: `${kind} on host device ${path}`, why: "it hands a device of the host to the guest" };
    case "pipe":
      return { what: `${kind} on pipe ${path}`, why: "it uses a named pipe on the host" };
    case "stdio":
      return { what: `${kind} on QEMU's standard output`, why: "it writes to QEMU's own output on the host" };
    default:
      return { what: `${kind} of type '${shown(type)}'`, why: otherWhy };
  }
}

const TERMINAL_TARGET: Rule = {
  attributes: { type: WORD, port: INT },
  children: { model: { attributes: { name: WORD } } },
};

const TERMINAL_KIND: Readonly<Record<string, string>> = {
  serial: "serial port",
  console: "console",
  parallel: "parallel port",
};

/**
 * A serial port, console or parallel port is kept on a pseudo-terminal only, which is what
 * `virsh console` uses; every other kind leads to a file, socket or device of the host.
 */
function restoreTerminal(node: OrderedNode, context: Context): XmlElement | null {
  const name = elementName(node) ?? "";
  const kind = own(TERMINAL_KIND, name) ?? name;
  if ((attribute(node, "type") ?? "pty") !== "pty") {
    context.drop(terminalNote(kind, node, "Snapkeep restores these on a pseudo-terminal only"));
    return null;
  }
  const log = firstChild(node, "log");
  if (log !== undefined) {
    context.drop({
      what: `${kind} log ${shown(attribute(log, "file") ?? "")}`.trimEnd(),
      why: "it writes to a file on the host",
    });
  }
  return element(name, { type: "pty" }, [
    ...sanitizeFirst(node, "target", TERMINAL_TARGET, context),
    ...sanitizeFirst(node, "address", ADDRESS, context),
  ]);
}

/**
 * The guest agent channel is kept without its socket path (libvirt makes one under its own
 * directory), the SPICE agent channel as it is; every other channel reaches into the host.
 */
function restoreChannel(channel: OrderedNode, context: Context): XmlElement | null {
  const type = attribute(channel, "type") ?? "";
  const target = firstChild(channel, "target");
  const targetType = target === undefined ? undefined : attribute(target, "type");
  const targetName = target === undefined ? undefined : attribute(target, "name");
  const address = sanitizeFirst(channel, "address", ADDRESS, context);
  if (type === "unix" && targetType === "virtio" && targetName === GUEST_AGENT) {
    const path = sourceOf(channel);
    if (path !== undefined && !/^\/(?:var\/lib|run)\/libvirt\/qemu\/channel\//.test(path)) {
      context.drop({
        what: `guest agent socket at ${shown(path)}`,
        why: "it is a path on the host; libvirt makes its own socket",
      });
    }
    return element("channel", { type }, [
      element("target", { type: "virtio", name: GUEST_AGENT }, []),
      ...address,
    ]);
  }
  if (type === "spicevmc" && targetType === "virtio" && targetName === SPICE_AGENT) {
    return element("channel", { type }, [
      element("target", { type: "virtio", name: SPICE_AGENT }, []),
      ...address,
    ]);
  }
  const kind = `channel${targetName === undefined ? "" : ` '${shown(targetName)}'`}`;
  if (targetType === "guestfwd") {
    return dropNode(
      context,
      `${kind} forwarding guest traffic`,
      "it connects the guest to a program or socket on the host",
    );
  }
  context.drop(
    terminalNote(kind, channel, "Snapkeep restores the guest agent and SPICE agent channels only"),
  );
  return null;
}

/** The random-number device always reads this host's /dev/urandom, whatever the bundle named. */
function restoreRng(rng: OrderedNode, context: Context): XmlElement | null {
  const model = attribute(rng, "model") ?? "";
  if (!["virtio", "virtio-transitional", "virtio-non-transitional"].includes(model)) {
    return dropNode(
      context,
      `random-number device '${shown(model)}'`,
      "Snapkeep does not know this kind of device",
    );
  }
  const backend = firstChild(rng, "backend");
  const backendModel = backend === undefined ? undefined : attribute(backend, "model");
  const source = backend === undefined ? "" : textOf(backend).trim();
  if (backendModel !== "random" || source !== URANDOM) {
    context.drop({
      what: `random-number source ${shown((backendModel === "random" ? source : backendModel) || "default")}`,
      why: `the restored VM reads ${URANDOM} on this host instead`,
    });
  }
  return element("rng", { model }, [
    element("backend", { model: "random" }, [], URANDOM),
    ...sanitizeFirst(rng, "rate", { attributes: { bytes: INT, period: INT } }, context),
    ...sanitizeFirst(rng, "address", ADDRESS, context),
  ]);
}

/** An emulated TPM only: it is new and empty, like the one libvirt makes for the new UUID. */
function restoreTpm(tpm: OrderedNode, context: Context): XmlElement | null {
  const backend = firstChild(tpm, "backend");
  const type = backend === undefined ? "" : (attribute(backend, "type") ?? "");
  if (type === "passthrough") {
    return dropNode(context, "the host's TPM", "it hands the host's own TPM to the guest");
  }
  if (type !== "emulator" || backend === undefined) {
    return dropNode(context, `TPM of type '${shown(type)}'`, "Snapkeep restores emulated TPMs only");
  }
  const model = attribute(tpm, "model");
  const version = attribute(backend, "version");
  const keptModel = model !== undefined && oneOf("tpm-tis", "tpm-crb", "tpm-spapr")(model) ? { model } : {};
  const keptVersion = version !== undefined && oneOf("1.2", "2.0")(version) ? { version } : {};
  return element("tpm", keptModel, [element("backend", { type, ...keptVersion }, [])]);
}

function restoreAudio(audio: OrderedNode, context: Context): XmlElement | null {
  const type = attribute(audio, "type") ?? "";
  if (type !== "none" && type !== "spice") {
    return dropNode(
      context,
      `audio output '${shown(type)}'`,
      type === "file" ? "it writes sound to a file on the host" : "it plays or records sound on the host",
    );
  }
  const id = attribute(audio, "id");
  return element("audio", { ...(id !== undefined && INT(id) ? { id } : {}), type }, []);
}

function restoreRedirdev(redirdev: OrderedNode, context: Context): XmlElement | null {
  const type = attribute(redirdev, "type") ?? "";
  if (attribute(redirdev, "bus") !== "usb" || type !== "spicevmc") {
    return dropNode(context, `USB redirection over '${shown(type)}'`, "it opens a socket on the host");
  }
  return element("redirdev", { bus: "usb", type }, [
    ...sanitizeFirst(redirdev, "boot", BOOT, context),
    ...sanitizeFirst(redirdev, "address", ADDRESS, context),
  ]);
}

function dropNode(context: Context, what: string, why: string): null {
  context.drop({ what, why });
  return null;
}

/** The first child named `name`, sanitized by `rule`, as a list of zero or one. */
function sanitizeFirst(node: OrderedNode, name: string, rule: Rule, context: Context): XmlElement[] {
  const child = firstChild(node, name);
  const built = child === undefined ? null : sanitize(child, rule, context);
  return built === null ? [] : [built];
}

/** The host path or name a device's <source> points at, for notes. */
function sourceOf(node: OrderedNode): string | undefined {
  const source = firstChild(node, "source");
  if (source === undefined) {
    return undefined;
  }
  const keys = ["file", "dev", "dir", "path", "name", "socket", "evdev", "pool", "volume"];
  return keys.map((key) => attribute(source, key)).find((value) => value !== undefined);
}

// ---- what was kept, in words ----

function keptNotes(domain: XmlElement): DefinitionNote[] {
  const notes: DefinitionNote[] = [];
  const top = (name: string): XmlElement | undefined => domain.children.find((child) => child.name === name);
  notes.push({
    what: `name '${shown(top("name")?.text ?? "")}'`,
    why: "the name chosen for the restored VM",
  });
  const memory = top("memory");
  if (memory?.text !== undefined) {
    notes.push({
      what: `memory ${formatSize(memory.text, memory.attributes["unit"])}`,
      why: "as the original had",
    });
  }
  // Without <vcpu> libvirt gives a VM one.
  const vcpus = top("vcpu")?.text ?? "1";
  const cpu = top("cpu");
  const model = cpu?.children.find((child) => child.name === "model")?.text ?? cpu?.attributes["mode"];
  notes.push({
    what: `${vcpus} vCPU${vcpus === "1" ? "" : "s"}${model === undefined ? "" : ` (CPU ${model})`}`,
    why: "as the original had",
  });
  const os = top("os");
  if (os !== undefined) {
    const machine = os.children.find((child) => child.name === "type")?.attributes["machine"];
    const secure = os.children.some(
      (child) => child.name === "loader" && child.attributes["secure"] === "yes",
    );
    const firmware =
      os.attributes["firmware"] === "efi"
        ? `UEFI firmware${secure ? " with Secure Boot" : ""}`
        : "BIOS firmware";
    notes.push({
      what: `machine ${machine ?? "of this host's default type"} with ${firmware} from this host`,
      why: "libvirt uses this host's own firmware files",
    });
  }
  if (top("genid") !== undefined) {
    notes.push({ what: "a new VM generation ID", why: "so the guest can tell it is a restored copy" });
  }
  const settings = [
    ...new Set(
      domain.children
        .map((child) => SETTING_WORDS[child.name])
        .filter((words): words is string => words !== undefined),
    ),
  ];
  if (settings.length > 0) {
    notes.push({ what: settings.join(", "), why: "as the original had" });
  }
  const devices = top("devices")?.children ?? [];
  const others: string[] = [];
  for (const device of devices) {
    const note = deviceNote(device);
    if (typeof note === "string") {
      others.push(note);
    } else if (note !== null) {
      notes.push(note);
    }
  }
  if (others.length > 0) {
    notes.push({ what: countedList(others), why: "plain emulated hardware, nothing of the host" });
  }
  // Two random-number devices read the same /dev/urandom; saying so twice says nothing more.
  return [...new Map(notes.map((note) => [`${note.what}\n${note.why}`, note])).values()];
}

const SETTING_WORDS: Readonly<Record<string, string>> = {
  title: "title",
  description: "description",
  features: "hypervisor features",
  clock: "clock",
  pm: "power management",
  on_poweroff: "what to do on power-off, reboot and crash",
  on_reboot: "what to do on power-off, reboot and crash",
  on_crash: "what to do on power-off, reboot and crash",
};

/** A note of its own for devices a person looks for, a short label for the rest. */
function deviceNote(device: XmlElement): DefinitionNote | string | null {
  const child = (name: string): XmlElement | undefined => device.children.find((c) => c.name === name);
  const attributes = device.attributes;
  switch (device.name) {
    case "disk": {
      const target = child("target")?.attributes;
      const dev = target?.["dev"] ?? "";
      if (attributes["device"] !== "disk") {
        return {
          what: `${attributes["device"] === "cdrom" ? "CD-ROM" : "floppy"} drive ${dev} (empty)`,
          why: "the drive stays, without a disc",
        };
      }
      const bus = target?.["bus"] === undefined ? "" : ` (${target["bus"]})`;
      return {
        what: `disk ${dev}${bus} → ${child("source")?.attributes["file"] ?? ""}`,
        why: "the restored image",
      };
    }
    case "interface": {
      const source = child("source")?.attributes;
      const model = child("model")?.attributes["type"];
      const on =
        source?.["network"] !== undefined
          ? `network '${source["network"]}'`
          : source?.["bridge"] !== undefined
            ? `bridge '${source["bridge"]}'`
            : "user-mode networking";
      return {
        what: `NIC on ${on}${model === undefined ? "" : ` (${model})`} with a new MAC address`,
        why: source === undefined ? "it needs nothing of the host" : `${on} exists on this host`,
      };
    }
    case "graphics":
      return {
        what: `${attributes["type"] === "vnc" ? "VNC" : "SPICE"} console on ${LOOPBACK}`,
        why: "reach it from this host or through SSH",
      };
    case "channel":
      return child("target")?.attributes["name"] === GUEST_AGENT
        ? { what: "guest agent channel", why: "libvirt makes its own socket for it" }
        : { what: "SPICE agent channel", why: "clipboard and screen size through the SPICE console" };
    case "serial":
    case "console":
    case "parallel":
      return {
        what: `${TERMINAL_KIND[device.name] ?? device.name} on a pseudo-terminal`,
        why: "virsh console reaches it",
      };
    case "rng":
      return { what: `random-number device from ${URANDOM}`, why: "it reads this host's random numbers" };
    case "tpm": {
      const version = child("backend")?.attributes["version"];
      return {
        what: `emulated TPM${version === undefined ? "" : ` ${version}`}`,
        why: "a new, empty one: secrets sealed in the original's TPM (disk encryption keys) are not carried over",
      };
    }
    case "controller":
      return `${attributes["type"] ?? ""} controller`.trimStart();
    case "input":
      return `${attributes["type"] ?? "input"}${attributes["bus"] === undefined ? "" : ` (${attributes["bus"]})`}`;
    case "video":
      return `video ${child("model")?.attributes["type"] ?? ""}`.trimEnd();
    case "memballoon":
      return attributes["model"] === "none" ? null : "memory balloon";
    case "redirdev":
      return "USB redirection over SPICE";
    case "audio":
      return null;
    default:
      return `${device.name}${attributes["model"] === undefined ? "" : ` ${attributes["model"]}`}`;
  }
}

/** "2 × pci controller, usb controller, tablet (usb)": repeats counted, first-seen order. */
function countedList(labels: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const label of labels) {
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts].map(([label, count]) => (count === 1 ? label : `${count} × ${label}`)).join(", ");
}

const UNIT_POWERS: Readonly<Record<string, number>> = { b: 0, k: 1, m: 2, g: 3, t: 4, p: 5, e: 6 };

/** libvirt's memory units: KiB by default; "KB" and friends are powers of 1000. */
function formatSize(value: string, unit = "KiB"): string {
  const letter = unit.toLowerCase() === "bytes" ? "b" : (unit[0]?.toLowerCase() ?? "k");
  const binary = unit.length === 1 || /ib$/i.test(unit);
  const bytes = Number(value) * (binary ? 1024 : 1000) ** (UNIT_POWERS[letter] ?? 1);
  for (const [size, name] of [
    [1024 ** 4, "TiB"],
    [1024 ** 3, "GiB"],
    [1024 ** 2, "MiB"],
    [1024, "KiB"],
  ] as const) {
    if (bytes >= size && bytes % size === 0) {
      return `${bytes / size} ${name}`;
    }
  }
  return `${bytes} bytes`;
}

// ---- reading the parsed tree ----

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

function firstChild(node: OrderedNode, name: string): OrderedNode | undefined {
  return elements(childrenOf(node), name)[0];
}

function childrenOf(node: OrderedNode): OrderedNode[] {
  const name = elementName(node) ?? Object.keys(node).find((k) => k !== ATTRIBUTES);
  const children = name === undefined ? undefined : node[name];
  return Array.isArray(children) ? (children as OrderedNode[]) : [];
}

/** The element's own text and CDATA, in order; child elements' text is not included. */
function textOf(node: OrderedNode): string {
  return childrenOf(node)
    .map((child) => {
      const text = child[TEXT];
      if (typeof text === "string") {
        return text;
      }
      return child[CDATA] === undefined ? "" : textOf(child);
    })
    .join("");
}

function attributesOf(node: OrderedNode): Record<string, string> {
  const attributes = node[ATTRIBUTES];
  return typeof attributes === "object" && attributes !== null ? (attributes as Record<string, string>) : {};
}

function attribute(node: OrderedNode, name: string): string | undefined {
  const value = own(attributesOf(node), name);
  return typeof value === "string" ? value : undefined;
}

/** A record's own entry: an element or attribute named "constructor" must not find Object's. */
function own<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

// ---- writing the result ----

function element(
  name: string,
  attributes: Readonly<Record<string, string>>,
  children: readonly XmlElement[],
  text?: string,
): XmlElement {
  return text === undefined ? { name, attributes, children } : { name, attributes, children, text };
}

function serialize(node: XmlElement, depth: number): string {
  const indent = "  ".repeat(depth);
  const attributes = Object.entries(node.attributes)
    .map(([key, value]) => ` ${key}='${escape(value, ATTRIBUTE_ESCAPES)}'`)
    .join("");
  if (node.text !== undefined) {
    return `${indent}<${node.name}${attributes}>${escape(node.text, TEXT_ESCAPES)}</${node.name}>\n`;
  }
  if (node.children.length === 0) {
    return `${indent}<${node.name}${attributes}/>\n`;
  }
  const inner = node.children.map((child) => serialize(child, depth + 1)).join("");
  return `${indent}<${node.name}${attributes}>\n${inner}${indent}</${node.name}>\n`;
}

function escape(text: string, characters: RegExp): string {
  return text.replace(characters, (char) => ESCAPED[char] ?? char);
}

/**
 * A value from the bundle as it goes into a note: a person reads notes in a terminal or the app,
 * so control and bidirectional-override characters are shown as escapes and long values cut.
 */
function shown(value: string): string {
  let visible = "";
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    const invisible =
      code < 0x20 ||
      (code >= 0x7f && code <= 0x9f) ||
      code === 0x200e ||
      code === 0x200f ||
      (code >= 0x202a && code <= 0x202e) ||
      (code >= 0x2066 && code <= 0x2069);
    visible += invisible ? `\\u{${code.toString(16)}}` : char;
  }
  return visible.length > 120 ? `${visible.slice(0, 119)}…` : visible;
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
