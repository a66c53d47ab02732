// The Deployments and Automations pages: the duration chart (uPlot) and the automation
// editor's lint-as-you-type (debounced calls to /automations/check, errors at their place),
// in CodeMirror when its bundle loaded, else in the plain textarea with line numbers.
(function () {
  "use strict";

  function cssColour(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function drawDurations(holder) {
    if (!window.uPlot) { return; }
    fetch(holder.dataset.src, { credentials: "same-origin" })
      .then(function (answer) { return answer.json(); })
      .then(function (data) {
        if (!data.x || data.x.length === 0) {
          holder.textContent = "No completed runs yet.";
          return;
        }
        var deadline = data.x.map(function () { return data.deadline; });
        var axis = cssColour("--fg", "#888");
        holder.textContent = "";
        new window.uPlot({
          width: Math.max(280, holder.clientWidth), height: 180,
          series: [{}, { label: "duration (s)", stroke: cssColour("--info", "#36c"), width: 2 },
                   { label: "deadline (s)", stroke: cssColour("--bad", "#c33"), width: 1, dash: [6, 4],
                     points: { show: false } }],
          axes: [{ stroke: axis }, { stroke: axis }]
        }, [data.x, data.durations, deadline], holder);
      });
  }

  function lineNumbers(editor, gutter, marks) {
    var count = editor.value.split("\n").length;
    var lines = [];
    for (var line = 1; line <= count; line += 1) {
      var mark = marks[line];
      lines.push(mark ? "<span class=\"lint-mark\" title=\"\">" + line + "</span>" : String(line));
    }
    gutter.innerHTML = lines.join("\n");
    Array.prototype.forEach.call(gutter.querySelectorAll(".lint-mark"), function (node) {
      node.title = marks[Number(node.textContent)];
    });
    gutter.scrollTop = editor.scrollTop;
  }

  function showProblems(form, report) {
    var list = form.querySelector("[data-lint-list]");
    var editor = form.querySelector("[data-editor]");
    var gutter = form.querySelector("[data-gutter]");
    var marks = {};
    list.textContent = "";
    (report.errors || []).forEach(function (problem) {
      var item = document.createElement("li");
      item.className = "error";
      item.setAttribute("data-testid", "lint-error");
      var where = problem.line ? "line " + problem.line + ", column " + problem.column + ": " : "";
      item.textContent = where + (problem.path ? problem.path + ": " : "") + problem.message;
      list.appendChild(item);
      if (problem.line) { marks[problem.line] = problem.message; }
    });
    (report.warnings || []).forEach(function (warning) {
      var item = document.createElement("li");
      item.className = "muted";
      item.textContent = "warning: " + warning;
      list.appendChild(item);
    });
    form.querySelector("[data-lint-state]").textContent = report.valid ? "valid" : "invalid";
    editor.setAttribute("aria-invalid", report.valid ? "false" : "true");
    lineNumbers(editor, gutter, marks);
  }

  function checkText(form, text) {
    var token = document.querySelector("meta[name=csrf-token]");
    var body = new URLSearchParams();
    body.set("text", text);
    body.set("format", form.querySelector("[name=format]:checked").value);
    return fetch(form.dataset.check, {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRF-Token": token ? token.content : "" }
    }).then(function (answer) { return answer.json(); });
  }

  // Without the CodeMirror bundle: the textarea, a gutter of line numbers, and the marks.
  function setUpPlainEditor(form) {
    var editor = form.querySelector("[data-editor]");
    var gutter = form.querySelector("[data-gutter]");
    var timer = null;
    function check() {
      checkText(form, editor.value).then(function (report) { showProblems(form, report); });
    }
    function later() {
      lineNumbers(editor, gutter, {});
      clearTimeout(timer);
      timer = setTimeout(check, 300);
    }
    editor.addEventListener("input", later);
    editor.addEventListener("scroll", function () { gutter.scrollTop = editor.scrollTop; });
    Array.prototype.forEach.call(form.querySelectorAll("[name=format]"), function (radio) {
      radio.addEventListener("change", later);
    });
    lineNumbers(editor, gutter, {});
    check();
  }

  // With CodeMirror (vendor/codemirror.min.js): its linter asks /automations/check (it
  // debounces the calls itself) and marks each error from its line and column to the end
  // of that line; the textarea stays in the form, kept in step, so saving sends the text.
  function setUpCodeMirror(form) {
    var CM = window.CM;
    var textarea = form.querySelector("[data-editor]");
    var language = new CM.Compartment();
    function mode() {
      return form.querySelector("[name=format]:checked").value === "yaml" ? CM.yaml() : CM.json();
    }
    function diagnostics(view) {
      return checkText(form, view.state.doc.toString()).then(function (report) {
        showProblems(form, report);
        return (report.errors || []).map(function (problem) {
          var doc = view.state.doc;
          var line = doc.line(Math.min(Math.max(problem.line || 1, 1), doc.lines));
          var from = Math.min(line.from + Math.max((problem.column || 1) - 1, 0), line.to);
          return { from: from, to: Math.max(line.to, from), severity: "error",
                   message: (problem.path ? problem.path + ": " : "") + problem.message };
        });
      });
    }
    var view = new CM.EditorView({
      parent: textarea.parentNode,
      state: CM.EditorState.create({
        doc: textarea.value,
        extensions: [
          CM.lineNumbers(), CM.highlightActiveLineGutter(), CM.history(), CM.drawSelection(),
          CM.indentOnInput(), CM.bracketMatching(), CM.highlightActiveLine(),
          CM.syntaxHighlighting(CM.defaultHighlightStyle, { fallback: true }),
          CM.keymap.of(CM.defaultKeymap.concat(CM.historyKeymap)),
          language.of(mode()), CM.lintGutter(), CM.linter(diagnostics, { delay: 300 }),
          CM.EditorView.contentAttributes.of({ "aria-label": "Automation document",
                                               "aria-describedby": "editor-problems" }),
          CM.EditorView.updateListener.of(function (update) {
            if (update.docChanged) { textarea.value = update.state.doc.toString(); }
          })
        ]
      })
    });
    view.dom.setAttribute("data-testid", "code-editor");
    textarea.hidden = true;
    form.querySelector("[data-gutter]").hidden = true;
    Array.prototype.forEach.call(form.querySelectorAll("[name=format]"), function (radio) {
      radio.addEventListener("change", function () {
        // a new language, and the same text checked again in the new format
        view.dispatch({ effects: language.reconfigure(mode()),
                        changes: { from: 0, to: view.state.doc.length, insert: view.state.doc.toString() } });
      });
    });
  }

  function setUpEditor(form) {
    if (window.CM && window.CM.EditorView) { setUpCodeMirror(form); } else { setUpPlainEditor(form); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var chart = document.getElementById("durations-chart");
    if (chart) { drawDurations(chart); }
    Array.prototype.forEach.call(document.querySelectorAll("form[data-check]"), setUpEditor);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
      });
    });
  });
}());
