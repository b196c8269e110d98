/* A link to /shared#<token> opens the holder's items: the token is in the fragment, which the
   browser never sends to the server (so it is in no access log); this puts it into the form's
   POST body and removes it from the address bar. Without script the holder pastes it. */
(function () {
  var raw = window.location.hash.slice(1);
  var box = document.getElementById("token");
  var form = document.getElementById("token-form");
  if (!raw || !box || !form) return;
  box.value = decodeURIComponent(raw.replace(/^token=/, ""));
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  form.submit();
})();
