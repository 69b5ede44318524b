// Playground: chat with a model through the real /v1/chat/completions, streamed with
// fetch + ReadableStream (Server-Sent Events parsed by hand: EventSource cannot POST).
(function () {
  "use strict";

  var KEY_STORAGE = "oneapi.playgroundKey";
  var form = document.getElementById("pg-form");
  if (!form) return;
  var chat = document.getElementById("pg-chat");
  var input = document.getElementById("pg-input");
  var keyField = document.getElementById("pg-key");
  var modelField = document.getElementById("pg-model");
  var sendButton = document.getElementById("pg-send");
  var stopButton = document.getElementById("pg-stop");
  var history = [];
  var controller = null;

  keyField.value = sessionStorage.getItem(KEY_STORAGE) || "";
  keyField.addEventListener("change", function () {
    sessionStorage.setItem(KEY_STORAGE, keyField.value.trim());
  });

  function bubble(role, text) {
    var node = document.createElement("div");
    node.className = "bubble " + role;
    node.textContent = text;
    chat.appendChild(node);
    chat.scrollTop = chat.scrollHeight;
    return node;
  }

  function csrfToken() {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  document.getElementById("pg-new-key").addEventListener("click", function () {
    fetch(form.getAttribute("data-key-url"), {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    })
      .then(function (response) {
        if (!response.ok) throw new Error("could not create a key (HTTP " + response.status + ")");
        return response.json();
      })
      .then(function (data) {
        keyField.value = data.key;
        sessionStorage.setItem(KEY_STORAGE, data.key);
        bubble("assistant", "Created key “" + data.name + "”, valid until " + data.expires_at + ".");
      })
      .catch(function (error) { bubble("error", String(error.message || error)); });
  });

  document.getElementById("pg-clear").addEventListener("click", function () {
    history = [];
    chat.textContent = "";
  });

  stopButton.addEventListener("click", function () {
    if (controller) controller.abort();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  function errorMessage(status, text) {
    try {
      var body = JSON.parse(text);
      if (body.error && body.error.message) return body.error.message + " (HTTP " + status + ")";
    } catch (ignored) { /* not JSON */ }
    return "HTTP " + status + ": " + text.slice(0, 300);
  }

  // Feed decoded text; call onData for each complete `data:` payload of the event stream.
  function sseParser(onData) {
    var buffer = "";
    return function (chunk) {
      buffer += chunk;
      var events = buffer.split(/\r?\n\r?\n/);
      buffer = events.pop();
      events.forEach(function (event) {
        var data = event.split(/\r?\n/)
          .filter(function (line) { return line.indexOf("data:") === 0; })
          .map(function (line) { return line.slice(5).replace(/^ /, ""); })
          .join("\n");
        if (data) onData(data);
      });
    };
  }

  async function send(text) {
    var key = keyField.value.trim();
    if (!key) {
      bubble("error", "Paste one of your API keys, or create one for the playground.");
      return;
    }
    if (!modelField.value) {
      bubble("error", "No model is available to your group.");
      return;
    }
    history.push({ role: "user", content: text });
    bubble("user", text);
    var answer = bubble("assistant", "");
    var reply = "";
    controller = new AbortController();
    sendButton.disabled = true;
    stopButton.hidden = false;
    try {
      var response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + key },
        body: JSON.stringify({ model: modelField.value, messages: history, stream: true }),
        signal: controller.signal,
      });
      if (!response.ok || !response.body) {
        throw new Error(errorMessage(response.status, await response.text()));
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var feed = sseParser(function (data) {
        if (data === "[DONE]") return;
        var event = JSON.parse(data);
        if (event.error) throw new Error(event.error.message || "the stream reported an error");
        (event.choices || []).forEach(function (choice) {
          var delta = choice.delta || {};
          if (delta.content) {
            reply += delta.content;
            answer.textContent = reply;
            chat.scrollTop = chat.scrollHeight;
          }
        });
      });
      for (;;) {
        var part = await reader.read();
        if (part.done) break;
        feed(decoder.decode(part.value, { stream: true }));
      }
      history.push({ role: "assistant", content: reply });
      answer.setAttribute("data-done", "true");
    } catch (error) {
      if (error.name === "AbortError") {
        history.push({ role: "assistant", content: reply });
        answer.setAttribute("data-done", "true");
      } else {
        answer.remove();
        history.pop();
        bubble("error", String(error.message || error));
      }
    } finally {
      controller = null;
      sendButton.disabled = false;
      stopButton.hidden = true;
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || controller) return;
    input.value = "";
    send(text);
  });
})();
