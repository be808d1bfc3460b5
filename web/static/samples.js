/* The new-batch page's sample picker: a sample photo joins the chosen files (as if picked from
   disk, so the usual checks and upload apply); "generated faces" makes a synthesis batch through
   the API and opens it. */
"use strict";

(function () {
  const picker = document.getElementById("sample-picker");
  const input = document.getElementById("files");
  if (!picker || !input) return;
  const errorBox = document.getElementById("sample-error");

  for (const button of picker.querySelectorAll(".sample-photo")) {
    button.addEventListener("click", async function () {
      errorBox.textContent = "";
      try {
        const response = await fetch(button.dataset.src, { credentials: "same-origin" });
        if (!response.ok) throw new Error("the sample could not be loaded");
        const blob = await response.blob();
        const merged = new DataTransfer();
        for (const f of input.files) merged.items.add(f);
        merged.items.add(new File([blob], button.dataset.name, { type: "image/jpeg" }));
        input.files = merged.files;
        input.dispatchEvent(new Event("change"));
      } catch (e) { errorBox.textContent = e.message; }
    });
  }

  document.getElementById("sample-generated").addEventListener("click", function () {
    errorBox.textContent = "";
    Portal.request("POST", Portal.url("batches"), { synthesis: { count: 4 } }).then(function (made) {
      window.location.href = Portal.url("batch_page", made.id);
    }).catch(function (e) { errorBox.textContent = e.message; });
  });
})();
