// Passkeys for Vigie's pages, and the codes page's print button: the only script the gateway
// serves. It turns the server's WebAuthn options into browser calls and posts the answers
// back; the server decides.
"use strict";
(function () {
  function fromB64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    return Uint8Array.from(atob(s), function (c) { return c.charCodeAt(0); }).buffer;
  }
  function toB64u(buf) {
    var bytes = new Uint8Array(buf), s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  async function post(url, body) {
    var r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {})
    });
    var data = await r.json().catch(function () { return {}; });
    if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
    return data;
  }
  // The message is the page's own, in its language; the browser's or the server's wording
  // (English, technical) goes to the console only. Focus moves to it, so it is read out.
  function fail(button, err) {
    var box = document.getElementById("passkey-error");
    box.textContent = button.dataset.failed;
    box.hidden = false;
    button.disabled = false;
    box.setAttribute("tabindex", "-1");
    box.focus();
    if (err && window.console) console.warn("passkey:", err.name || "", err.message || "");
  }
  async function register(button) {
    var name = (document.getElementById("passkey-name") || {}).value || "";
    var options = (await post(button.dataset.start)).publicKey;
    options.challenge = fromB64u(options.challenge);
    options.user.id = fromB64u(options.user.id);
    (options.excludeCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
    var cred = await navigator.credentials.create({ publicKey: options });
    var done = await post(button.dataset.finish, {
      name: name, return: button.dataset.return,
      credential: {
        id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, extensions: {},
        response: {
          attestationObject: toB64u(cred.response.attestationObject),
          clientDataJSON: toB64u(cred.response.clientDataJSON)
        }
      }
    });
    location.assign(done.redirect);
  }
  async function authenticate(button) {
    var options = (await post(button.dataset.start)).publicKey;
    options.challenge = fromB64u(options.challenge);
    (options.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
    var cred = await navigator.credentials.get({ publicKey: options });
    var r = cred.response;
    var done = await post(button.dataset.finish, {
      return: button.dataset.return,
      credential: {
        id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, extensions: {},
        response: {
          authenticatorData: toB64u(r.authenticatorData),
          clientDataJSON: toB64u(r.clientDataJSON),
          signature: toB64u(r.signature),
          userHandle: r.userHandle ? toB64u(r.userHandle) : null
        }
      }
    });
    location.assign(done.redirect);
  }
  function wire(id, action) {
    var button = document.getElementById(id);
    if (!button) return;
    if (!window.PublicKeyCredential) {
      var box = document.getElementById("passkey-error");
      box.textContent = button.dataset.unsupported;
      box.hidden = false;
      button.disabled = true;
      return;
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      action(button).catch(function (e) { fail(button, e); });
    });
  }
  wire("passkey-register", register);
  wire("passkey-auth", authenticate);
  var print = document.getElementById("print-codes");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
})();
