// The dashboard's entry point: fonts and styles, the theme, then the app.
import '@fontsource-variable/inter/wght.css'
import './styles.css'
import { render } from 'preact'
import { applyTheme } from './theme'
import { App } from './app'

applyTheme()
render(<App />, document.getElementById('app')!)
