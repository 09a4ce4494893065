// The pager of a page's list (the report's samples, the comparison's items): buttons #p-prev and
// #p-next and the line #p-info. STATE.page is the page shown; evalkitPager.page(state, idx, size)
// clamps it to the pages of IDX (the indices that pass the filters), sets the buttons and the line,
// and returns the start and the indices shown; evalkitPager.buttons(state, render) makes the
// buttons move STATE.page and call RENDER.
var evalkitPager = {
  page: function (state, idx, size) {
    var pages = Math.max(1, Math.ceil(idx.length / size));
    if (state.page >= pages) state.page = pages - 1;
    var start = state.page * size;
    document.getElementById("p-info").textContent = "page " + (state.page + 1) + " of " + pages;
    document.getElementById("p-prev").disabled = state.page === 0;
    document.getElementById("p-next").disabled = state.page >= pages - 1;
    return { start: start, shown: idx.slice(start, start + size) };
  },
  buttons: function (state, render) {
    document.getElementById("p-prev").addEventListener("click", function () { state.page--; render(); });
    document.getElementById("p-next").addEventListener("click", function () { state.page++; render(); });
  }
};
