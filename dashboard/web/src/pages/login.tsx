// Log in, and accept an invitation (the invite token arrives in the URL fragment).
import { useState } from 'preact/hooks'
import { api, ApiError } from '../api'
import { navigate, useLocation } from '../router'
import { loadSession } from '../session'
import { Logo, ThemeToggle } from '../app'
import { Notice } from '../components/ui'

function AuthFrame(props: { title: string; sub: string; children: preact.ComponentChildren }) {
  return (
    <div class="auth">
      <div class="auth-top"><Logo /><ThemeToggle /></div>
      <div class="auth-card">
        <h1>{props.title}</h1>
        <p class="muted">{props.sub}</p>
        {props.children}
      </div>
      <p class="auth-foot">Privacy-first, live web analytics.</p>
    </div>
  )
}

export function Login() {
  const loc = useLocation()
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [error, setError] = useState('')
  const [busy, setBusy] = useState(false)
  const next = loc.query.get('next') || '/'
  const submit = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setError('')
    try {
      await api.login(email.trim(), password)
      await loadSession(true)
      navigate(next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true })
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'Wrong email or password.' : (err as Error).message)
      setBusy(false)
    }
  }
  return (
    <AuthFrame title="Log in" sub="Welcome back. Your visitors are waiting.">
      <form onSubmit={submit} class="form">
        {error && <Notice kind="error">{error}</Notice>}
        <label>Email<input type="email" name="email" autocomplete="username" required value={email} onInput={e => setEmail(e.currentTarget.value)} /></label>
        <label>Password<input type="password" name="password" autocomplete="current-password" required value={password} onInput={e => setPassword(e.currentTarget.value)} /></label>
        <button class="btn primary wide" type="submit" disabled={busy}>{busy ? 'Logging in…' : 'Log in'}</button>
      </form>
    </AuthFrame>
  )
}

export function AcceptInvite() {
  const token = location.hash.slice(1)
  const [name, setName] = useState('')
  const [password, setPassword] = useState('')
  const [error, setError] = useState('')
  const [done, setDone] = useState(false)
  const submit = async (e: Event) => {
    e.preventDefault()
    setError('')
    try {
      await api.acceptInvite(token, name.trim(), password)
      setDone(true)
    } catch (err) {
      setError((err as Error).message)
    }
  }
  if (!token) return <AuthFrame title="Invitation" sub="This link has no invitation in it. Ask for a new one."><span /></AuthFrame>
  if (done) return (
    <AuthFrame title="You're in" sub="Your account is ready. Log in with your email and the password you chose.">
      <button class="btn primary wide" onClick={() => navigate('/login')}>Log in</button>
    </AuthFrame>
  )
  return (
    <AuthFrame title="Join your team" sub="Choose your name and a password (at least 10 characters). If you already have an account, enter its password.">
      <form onSubmit={submit} class="form">
        {error && <Notice kind="error">{error}</Notice>}
        <label>Name<input name="name" autocomplete="name" value={name} onInput={e => setName(e.currentTarget.value)} /></label>
        <label>Password<input type="password" name="password" autocomplete="new-password" minLength={10} required value={password} onInput={e => setPassword(e.currentTarget.value)} /></label>
        <button class="btn primary wide" type="submit">Accept invitation</button>
      </form>
    </AuthFrame>
  )
}
