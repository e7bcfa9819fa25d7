// Compiled, never run, by test/unit/types.test.js (tsc --noEmit): the package's types
// (index.d.ts, found through package.json "exports" as an npm user's compiler finds them)
// must accept the usage docs/sdk.md shows and refuse misuse.
import { init, track, page, identify, optOut, optIn } from '@pulse-analytics/tracker'
import type { Options, Props, IdentifyOptions } from '@pulse-analytics/tracker'
// @ts-expect-error the package has no such export
import { flush } from '@pulse-analytics/tracker'

const options: Options = {
  site: 'pk_test', host: 'https://pulse.example.com', auto: false, hash: true, dnt: true, exclude: '/admin/*, /preview', local: false,
}
init(options)
init({ site: 'pk_test' })
track('signup')
track('signup', { plan: 'pro', seats: 3, trial: false })
page()
identify('u42')
const token: IdentifyOptions = { token: 'header.payload.signature' }
identify('u42', { plan: 'pro' }, token)
optOut()
optIn()
const props: Props = { plan: 'pro' }
track('upgrade', props)
const done: void = track('x')
void done, flush

// @ts-expect-error the site key is required
init({ host: 'https://pulse.example.com' })
// @ts-expect-error an option that does not exist
init({ site: 'pk_test', hosts: 'https://pulse.example.com' })
// @ts-expect-error auto is a boolean
init({ site: 'pk_test', auto: 'false' })
// @ts-expect-error property values are strings, numbers or booleans
track('signup', { plan: { tier: 'pro' } })
// @ts-expect-error an event has a name
track()
// @ts-expect-error the identity token goes in the options
identify('u42', {}, 'header.payload.signature')
