#!/usr/bin/env bash
# Vendor the JavaScript the built book needs, so that its HTML works with no network:
#   require.js, the ipywidgets HTML manager (embed-amd.js) and MathJax 3 (CHTML output + fonts).
# Usage: bash tools/vendor_js.sh DEST        (the Makefile passes DEST=web_static/vendor)
# Needs npm (the npm registry only). Idempotent: a DEST that already holds these exact versions is
# left alone. Fails loudly (non-zero exit, a message naming the missing piece) on any error.
set -euo pipefail

DEST=${1:?usage: tools/vendor_js.sh DEST (e.g. web_static/vendor)}
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.6   # AMD build; matches myst-nb's ipywidgets_js default
REQUIREJS=requirejs@2.3.8
MATHJAX=mathjax@3.2.2
PACKAGES="$HTML_MANAGER $REQUIREJS $MATHJAX"
VERSIONS="$PACKAGES +widgets-shim-2"   # bump the shim tag when write_shim changes

# widgets-shim.js, loaded on widget pages after the MathJax config and before require.js:
# 1. html-manager 1.0.6 typesets widget labels with the MathJax 2 call `MathJax.Hub.Queue`, but
#    the book ships MathJax 3, so each label threw "Cannot read properties of undefined (reading
#    'Queue')". The shim maps the call to MathJax 3 (a no-op until MathJax is ready: its first
#    pass typesets the whole page; then `typesetPromise` on the label).
# 2. html-manager finds its icon fonts (Font Awesome) next to its AMD module URL, which require.js
#    resolves against the *page* ("book/@jupyter-widgets/...": 404s, blank icons on Play and
#    Button widgets). A require.js config set before require.js loads points "@jupyter-widgets"
#    at DEST/jupyter-widgets/, where the fonts are copied.
write_shim() {
  cat >"$1" <<'JS'
/* mfteach widget-page shim, written by tools/vendor_js.sh: see the comments there. */
(function () {
  var here = document.currentScript && document.currentScript.src;
  if (here && typeof window.require === "undefined") {
    window.require = { paths: { "@jupyter-widgets": here.replace(/[^/]*$/, "") + "jupyter-widgets" } };
  }
  var cfg = (window.MathJax = window.MathJax || {});
  cfg.Hub = { Queue: function () {} };
  cfg.startup = cfg.startup || {};
  var ready = cfg.startup.ready;
  cfg.startup.ready = function () {
    if (ready) { ready(); } else { window.MathJax.startup.defaultReady(); }
    var mj = window.MathJax;
    mj.Hub = {
      Queue: function (job) {
        var el = job && job[2];
        mj.startup.promise = mj.startup.promise
          .then(function () { return mj.typesetPromise(el ? [el] : undefined); })
          .catch(function (err) { console.warn("MathJax typeset of a widget label failed", err); });
      }
    };
  };
})();
JS
}

die() { echo "vendor_js.sh: ERROR: $*" >&2; exit 1; }

required=(require.js embed-amd.js widgets-shim.js jupyter-widgets/html-manager/dist mathjax/tex-mml-chtml.js
          mathjax/output/chtml/fonts/woff-v2 mathjax/input/tex/extensions)
complete() {
  [ -f "$DEST/VERSIONS" ] && [ "$(cat "$DEST/VERSIONS")" = "$VERSIONS" ] || return 1
  local f; for f in "${required[@]}"; do [ -e "$DEST/$f" ] || return 1; done
}
if complete; then
  echo "vendor_js.sh: $DEST is up to date ($VERSIONS)"; exit 0
fi

command -v npm >/dev/null || die "npm not found on PATH (install Node.js >= 18 and npm)"
command -v tar >/dev/null || die "tar not found on PATH"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "vendor_js.sh: npm pack $PACKAGES"
( cd "$work" && npm pack --silent $PACKAGES >npm-pack.log 2>&1 ) \
  || { cat "$work/npm-pack.log" >&2; die "npm pack failed (is the npm registry reachable?)"; }
for f in "$work"/*.tgz; do
  mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}" || die "could not unpack $f"
done
hm="$work/jupyter-widgets-html-manager-1.0.6/package/dist/embed-amd.js"
rq="$work/requirejs-2.3.8/package/require.js"
mj="$work/mathjax-3.2.2/package/es5"
for p in "$hm" "$rq" "$mj/tex-mml-chtml.js" "$mj/output/chtml/fonts/woff-v2" "$mj/input/tex/extensions"; do
  [ -e "$p" ] || die "expected file missing from the npm packages: ${p#"$work"/}"
done

# Build in a sibling folder, then swap it in, so an interrupted run never leaves half a DEST.
tmpdest="$DEST.tmp.$$"
rm -rf "$tmpdest"
mkdir -p "$tmpdest/mathjax/output/chtml/fonts" "$tmpdest/mathjax/input/tex"
cp "$rq" "$hm" "$tmpdest/"
cp "$mj/tex-mml-chtml.js" "$tmpdest/mathjax/"
cp -r "$mj/output/chtml/fonts/woff-v2" "$tmpdest/mathjax/output/chtml/fonts/"
cp -r "$mj/input/tex/extensions" "$tmpdest/mathjax/input/tex/"
write_shim "$tmpdest/widgets-shim.js"
fonts="$tmpdest/jupyter-widgets/html-manager/dist"
mkdir -p "$fonts"
cp "$(dirname "$hm")"/*.woff2 "$(dirname "$hm")"/*.woff "$(dirname "$hm")"/*.ttf "$fonts/" \
  || die "html-manager's font files are missing from its npm package"
printf '%s' "$VERSIONS" >"$tmpdest/VERSIONS"
rm -rf "$DEST"
mv "$tmpdest" "$DEST"
complete || die "vendoring finished but $DEST is incomplete"
echo "vendor_js.sh: wrote $DEST ($(du -sh "$DEST" | cut -f1))"
