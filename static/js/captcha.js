// The sign-in page's "show another picture" button: the same captcha, a new answer and picture,
// without spending a password guess. Without script the button stays hidden.
"use strict";

document.querySelectorAll("[data-captcha-renew]").forEach((button) => {
  const picture = document.getElementById(button.dataset.captchaRenew);
  const answer = document.getElementById("f-captcha_answer");
  const base = picture.getAttribute("src");
  button.hidden = false;
  button.addEventListener("click", () => {
    picture.src = `${base}?new=${Date.now()}`;
    if (answer) {
      answer.value = "";
      answer.focus();
    }
  });
});
