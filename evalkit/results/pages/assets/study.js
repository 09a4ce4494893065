(function(){
  var sets=[].slice.call(document.querySelectorAll("fieldset.axis")), cur=0;
  function mark(i){sets.forEach(function(s,j){s.classList.toggle("current",j===i)});cur=i;}
  if(sets.length){var open=sets.findIndex(function(s){return !s.querySelector("input:checked")});mark(open<0?0:open);}
  sets.forEach(function(s,j){s.addEventListener("focusin",function(){mark(j)})});
  document.addEventListener("keydown",function(e){
    var t=e.target.tagName; if(t==="TEXTAREA"||t==="A"||t==="BUTTON"||(t==="INPUT"&&e.target.type==="text"))return;
    if(e.key==="Enter"){e.preventDefault();document.getElementById("rating").requestSubmit();return;}
    var d=parseInt(e.key,10); if(isNaN(d)||!sets.length)return;
    var radios=sets[cur].querySelectorAll("input[type=radio]"); if(d<1||d>radios.length)return;
    e.preventDefault(); radios[d-1].checked=true; radios[d-1].focus(); if(cur<sets.length-1)mark(cur+1);
  });
})();
