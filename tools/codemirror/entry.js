// What the automation editor uses of CodeMirror 6, bundled by build.sh into one minified
// IIFE (window.CM) under services/api/web/static/vendor: CodeMirror ships ES modules only,
// and the pages load no module graph and no CDN.
export { EditorState, Compartment } from "@codemirror/state";
export { EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection } from "@codemirror/view";
export { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
export { syntaxHighlighting, defaultHighlightStyle, bracketMatching, indentOnInput } from "@codemirror/language";
export { linter, lintGutter } from "@codemirror/lint";
export { json } from "@codemirror/lang-json";
export { yaml } from "@codemirror/lang-yaml";
