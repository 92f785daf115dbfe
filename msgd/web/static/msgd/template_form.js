/* The template form: preview the unsaved draft, insert variables with a click, warn before
   unsaved changes are left behind. Plain script, no build step. */
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var form = document.getElementById("template_form");
    if (!form) { return; }
    var body = document.getElementById("id_body");
    var subject = document.getElementById("id_subject");
    var useDjango = document.getElementById("id_use_django");
    var target = body;
    var dirty = false;
    var previewBox = document.getElementById("draft-preview");

    // -- unsaved changes: a warning before leaving the page, none after saving
    function track(event) {
      if (previewBox && previewBox.contains(event.target)) { return; }
      dirty = true;
    }
    form.addEventListener("input", track);
    form.addEventListener("change", track);
    form.addEventListener("submit", function () { dirty = false; });
    window.addEventListener("beforeunload", function (event) {
      if (!dirty) { return; }
      event.preventDefault();
      event.returnValue = "";
    });

    // -- variables: shown for the chosen event type, inserted where the cursor is
    var typeSelect = document.getElementById("id_event_type_0");
    var typeText = document.getElementById("id_event_type_1");
    function showVariables() {
      var chosen = typeSelect ? typeSelect.value : "";
      if (chosen === "__other__" && typeText) { chosen = typeText.value.trim(); }
      if (typeText) { typeText.style.display = typeSelect && typeSelect.value === "__other__" ? "" : "none"; }
      var tables = document.querySelectorAll("#msgd-variables table.msgd-vars");
      var found = false;
      tables.forEach(function (t) { if (t.dataset.eventType === chosen) { found = true; } });
      tables.forEach(function (t, i) {
        t.hidden = found ? t.dataset.eventType !== chosen : i !== 0;
      });
    }
    if (typeSelect) { typeSelect.addEventListener("change", showVariables); }
    if (typeText) { typeText.addEventListener("input", showVariables); }
    showVariables();
    [body, subject].forEach(function (el) {
      if (el) { el.addEventListener("focus", function () { target = el; }); }
    });
    document.querySelectorAll("#msgd-variables button.msgd-var").forEach(function (button) {
      button.addEventListener("click", function () {
        if (!target) { return; }
        var text = useDjango && useDjango.checked ? button.dataset.django : button.dataset.standard;
        var start = target.selectionStart, end = target.selectionEnd;
        target.value = target.value.slice(0, start) + text + target.value.slice(end);
        target.focus();
        target.selectionStart = target.selectionEnd = start + text.length;
        target.dispatchEvent(new Event("input", { bubbles: true }));
      });
    });

    // -- preview of the draft: the form's fields as they are now, nothing saved
    var button = document.getElementById("draft-preview-button");
    var out = document.getElementById("draft-preview-result");
    if (button && out && previewBox) {
      button.addEventListener("click", function () {
        var data = new FormData(form);
        button.disabled = true;
        fetch(previewBox.dataset.url, { method: "POST", body: data, credentials: "same-origin",
                                        headers: { "X-Requested-With": "fetch" } })
          .then(function (resp) {
            return resp.text().then(function (html) {
              out.innerHTML = resp.ok ? html : "<p class=\"errornote\">" + resp.status + " " + resp.statusText + "</p>";
            });
          })
          .catch(function (err) { out.textContent = String(err); })
          .finally(function () { button.disabled = false; });
      });
    }
  });
})();
