// Types of @pulse-analytics/tracker (the ESM build, dist/pulse.mjs). docs/sdk.md describes
// the behaviour; docs/protocol.md the wire format.

/** Property values are stored as text; at most 30 properties, names of 1 to 64 bytes. */
export type Props = Record<string, string | number | boolean>

export interface Options {
  /** The site's public key, `pk_…`. Required. */
  site: string
  /** Origin of the Pulse server, e.g. `https://pulse.example.com`. Default: the page's origin. */
  host?: string
  /** Send a pageview at init and on every path change of a single-page app. Default true. */
  auto?: boolean
  /** Count hash changes (`#/route`) as page changes. Default false. */
  hash?: boolean
  /** Honour Do Not Track and Global Privacy Control: track nothing when either is set. Default false. */
  dnt?: boolean
  /** Comma-separated paths not to track; `*` matches any characters: `"/admin/*, /preview"`. */
  exclude?: string
  /** Track on localhost and 127.0.0.1 too (development). Default false. */
  local?: boolean
}

export interface IdentifyOptions {
  /** The identity JWT signed by the site's backend (HS256, iss = site key, sub = user id). */
  token?: string
}

/** init starts tracking; calls made before it are queued and replayed. Later calls do nothing; on a server it does nothing. */
export function init(options: Options): void
/** track records a custom event. */
export function track(name: string, props?: Props): void
/** page records a pageview of the current URL (needed only with `auto: false`). */
export function page(): void
/** identify records an identify event with userId and traits; with a token, the connection reconnects carrying it so that the server stores its `sub` as user id. */
export function identify(userId: string, traits?: Props, options?: IdentifyOptions): void
/** optOut stops tracking on this origin, now and on later visits, and forgets queued events. */
export function optOut(): void
/** optIn undoes optOut. */
export function optIn(): void
