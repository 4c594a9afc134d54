// The registration page's "send code" button: asks the API to text a code to the phone typed
// above, says what happened in the status line and counts down until another may be sent.
// Without script the button submits the form and the server sends the code instead.
"use strict";

document.querySelectorAll("[data-sms-code]").forEach((button) => {
  const phone = document.getElementById(button.dataset.phoneInput);
  const status = document.getElementById(button.dataset.status);
  const csrf = document.querySelector('meta[name="csrf-token"]');
  const label = button.textContent;
  let timer = null;

  const say = (text, bad) => {
    status.textContent = text || "";
    status.className = bad ? "error" : "hint";
  };

  const countDown = (seconds) => {
    let left = Math.max(1, Math.round(seconds));
    button.disabled = true;
    clearInterval(timer);
    const tick = () => {
      if (left <= 0) {
        clearInterval(timer);
        button.disabled = false;
        button.textContent = label;
        return;
      }
      button.textContent = button.dataset.waitLabel.replace("{s}", String(left));
      left -= 1;
    };
    tick();
    timer = setInterval(tick, 1000);
  };

  button.addEventListener("click", async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    say("");
    let response;
    try {
      response = await fetch(button.dataset.smsCode, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.content : "" },
        body: JSON.stringify({ phone: phone ? phone.value : "" }),
      });
    } catch (_) {
      // The request failed on the way: let the form ask instead.
      button.disabled = false;
      button.form.requestSubmit(button);
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 202) {
      say(body.message, false);
      countDown(body.resend_after_s || 60);
      document.getElementById("f-phone_code")?.focus();
      return;
    }
    const error = body.error || {};
    say((error.fields && error.fields.phone) || error.message || response.statusText, true);
    if (error.retry_after_s) countDown(error.retry_after_s);
    else button.disabled = false;
  });
});
