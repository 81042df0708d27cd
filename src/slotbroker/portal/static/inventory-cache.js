// What several pages need about the inventory and the caller: sites, which site each host is at, links
// and ports, and who the token is. Loaded once per sign-in (forget() on sign-out or after an import).

import { all, get } from "./api.js";

let loaded = null;
let me = null;

export function forget() {
  loaded = null;
  me = null;
}

export async function whoAmI() {
  me ||= await get("/v1/me");
  return me;
}

export function inventory() {
  loaded ||= (async () => {
    const [sites, hosts, links, ports] = await Promise.all([
      all("/v1/providers", { kind: "site" }),
      all("/v1/providers", { kind: "host" }),
      get("/v1/links"),
      get("/v1/facility-ports"),
    ]);
    const siteByUuid = new Map(sites.map((s) => [s.uuid, s]));
    const hostSite = new Map(hosts.map((x) => [x.name, siteByUuid.get(x.parent_uuid)?.name]));
    const classes = new Set();
    for (const x of hosts) for (const c of Object.keys(x.inventories)) classes.add(c);
    sites.sort((a, b) => a.name.localeCompare(b.name));
    return { sites, hosts, links, ports, hostSite, classes: [...classes].sort() };
  })().catch((e) => {
    loaded = null;
    throw e;
  });
  return loaded;
}

// Which calendar row an item of a lease lands on: its host's site, or the link itself.
export function rowOf(inv, providerName) {
  return inv.hostSite.get(providerName) || providerName;
}

// The sites a lease item's provider is at: a host's site, a facility port's site ("SITE/port"), or both
// ends of a link.
export function sitesOf(inv, providerName) {
  const site = inv.hostSite.get(providerName);
  if (site) return [site];
  const link = inv.links.find((l) => l.name === providerName);
  if (link) return link.endpoints;
  const port = inv.ports.find((p) => `${p.site}/${p.name}` === providerName);
  return port ? [port.site] : [];
}
