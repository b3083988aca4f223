/* ipywidgets' static manager (ipywidgets/embed.js) typesets widget labels with MathJax 2's
   MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]); the book ships MathJax 3, which has no
   Hub, so every widget page logged "Cannot read properties of undefined (reading 'Queue')".
   Give it a Hub whose Queue runs MathJax 3's typesetPromise. Loaded before embed.js (see
   _config.yml, nb_ipywidgets_js), so this load handler runs before embed.js renders widgets. */
window.addEventListener("load", function () {
  var mj = window.MathJax;
  if (!mj || mj.Hub || !mj.startup || !mj.startup.promise) return;
  mj.Hub = {
    Queue: function (job) {
      var el = Array.isArray(job) ? job[2] : undefined;
      mj.startup.promise
        .then(function () { return mj.typesetPromise(el ? [el] : undefined); })
        .catch(function (err) { console.warn("MathJax could not typeset a widget label:", err); });
    },
  };
});
