// Small helpers for every page: copy buttons, confirmations, model chips. No dependencies.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http (a gateway on a LAN address): the Clipboard API is unavailable, use a textarea.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try {
      document.execCommand("copy");
    } finally {
      document.body.removeChild(area);
    }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) {
      var source = document.getElementById(button.getAttribute("data-copy"));
      var text = source ? (source.value || source.textContent || "").trim() : "";
      copyText(text).then(function () {
        var label = button.textContent;
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 1500);
      });
      return;
    }
    var chip = event.target.closest("[data-add-model]");
    if (chip) {
      event.preventDefault();
      var field = document.getElementById(chip.getAttribute("data-target"));
      if (!field) return;
      var items = field.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
      var model = chip.getAttribute("data-add-model");
      if (items.indexOf(model) === -1) items.push(model);
      field.value = items.join(", ");
    }
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  // "Use in playground": hand a just-created key to the playground page of this tab only.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-playground-key]");
    if (!link) return;
    var source = document.getElementById(link.getAttribute("data-playground-key"));
    if (source) sessionStorage.setItem("oneapi.playgroundKey", source.textContent.trim());
  });
})();
