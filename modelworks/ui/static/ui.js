/* modelworks web UI: the little behaviour the pages need (no inline script: the CSP forbids it).
   Sign-in sends the token as an Authorization header, never in a URL; uploads show their progress;
   every htmx request carries the session's CSRF token. */
(function () {
  "use strict";
  var csrf = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };

  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf();
  });

  // Language switch: a cookie the server reads; the page reloads in the new language.
  document.querySelectorAll("[data-lang]").forEach(function (button) {
    button.addEventListener("click", function () {
      document.cookie = "mw_lang=" + button.dataset.lang + "; path=/ui; max-age=31536000; SameSite=Lax";
      window.location.reload();
    });
  });

  // Selects that navigate (project switcher, filters) submit their form on change.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.value) select.form.requestSubmit();
    });
  });

  // Buttons that need a second thought.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  });

  // A part of the page that changes while jobs run (data-refresh: the URL to re-read it from) is
  // re-read every 5 s while the tab is visible and the server still marks it so; an idle tab costs nothing.
  document.querySelectorAll("[data-refresh][id]").forEach(function (el) {
    var id = el.id;
    var timer = setInterval(function () {
      var current = document.getElementById(id);
      if (!current || !current.dataset.refresh) return clearInterval(timer);
      if (document.visibilityState !== "visible") return;
      fetch(current.dataset.refresh, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          var fresh = html && new DOMParser().parseFromString(html, "text/html").getElementById(id);
          if (!fresh) return;
          current.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
            var same = fresh.querySelector('input[type=checkbox][name="' + box.name + '"][value="' + box.value + '"]');
            if (same) same.checked = true;  // a ticked run (to compare) stays ticked
          });
          current.replaceWith(fresh);
        });
    }, 5000);
  });

  var signin = document.getElementById("signin");
  if (signin) {
    signin.addEventListener("submit", function (e) {
      e.preventDefault();
      var error = document.getElementById("signin-error");
      var token = document.getElementById("token").value.trim();
      var next = signin.dataset.next || "/ui/";
      fetch(signin.action + "?next=" + encodeURIComponent(next), {
        method: "POST",
        headers: { Authorization: "Bearer " + token, Accept: "application/json" },
        credentials: "same-origin",
      }).then(function (r) {
        return r.json().then(function (body) {
          if (r.ok) {
            window.location.assign(body.next);
          } else {
            error.textContent = (body.error && body.error.message) || r.statusText;
            error.hidden = false;
          }
        });
      }).catch(function (err) {
        error.textContent = String(err);
        error.hidden = false;
      });
    });
  }

  // Upload with a progress bar: the file goes as the raw request body (streamed to disk by the server).
  var upload = document.getElementById("upload");
  if (upload) {
    upload.addEventListener("submit", function (e) {
      e.preventDefault();
      var file = upload.querySelector('input[type="file"]').files[0];
      var name = upload.querySelector('input[name="name"]').value.trim();
      var status = document.getElementById("upload-status");
      var bar = document.getElementById("upload-progress");
      if (!file || !name) return;
      var query = "?filename=" + encodeURIComponent(file.name);
      var pub = upload.querySelector('input[name="public"]');
      if (pub && pub.checked) query += "&public=true";
      var xhr = new XMLHttpRequest();
      xhr.open("POST", upload.dataset.base + "/" + encodeURIComponent(name) + "/upload" + query);
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("Accept", "application/json");
      bar.hidden = false;
      bar.value = 0;
      xhr.upload.addEventListener("progress", function (ev) {
        if (ev.lengthComputable) bar.value = Math.round((100 * ev.loaded) / ev.total);
      });
      xhr.addEventListener("load", function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
        if (xhr.status >= 200 && xhr.status < 300) {
          bar.value = 100;
          window.location.assign(body.next);
        } else {
          status.textContent = (body.error && body.error.message) || xhr.statusText;
          status.className = "error";
        }
      });
      xhr.addEventListener("error", function () {
        status.textContent = upload.dataset.failed;
        status.className = "error";
      });
      status.textContent = upload.dataset.sending;
      status.className = "";
      xhr.send(file);
    });
  }
})();
