#!/bin/sh
# Bundle the CodeMirror 6 packages the automation editor uses into one minified IIFE
# (window.CM), with their licences: run by `make vendor`, never when running or testing.
# Bump a version here, run `make vendor`, and update static/vendor/VENDOR.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../services/api/web/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/entry.js" "$work/entry.js"
cd "$work"
echo '{"name": "flowkeeper-codemirror", "private": true}' > package.json
npm install --silent --no-audit --no-fund \
  @codemirror/state@6.7.6 @codemirror/view@6.44.2 @codemirror/commands@6.11.2 \
  @codemirror/language@6.13.1 @codemirror/lint@6.9.8 @codemirror/lang-json@6.0.2 \
  @codemirror/lang-yaml@6.1.3 esbuild@0.28.2
npx esbuild entry.js --bundle --minify --format=iife --global-name=CM \
  --legal-comments=none --target=es2020 --outfile="$out/codemirror.min.js"
cp node_modules/@codemirror/view/LICENSE "$out/LICENSE.codemirror"
cp node_modules/@lezer/common/LICENSE "$out/LICENSE.lezer"
echo "vendored CodeMirror 6 into codemirror.min.js"
