// vidrelay's web apps work without this file; it only adds live updates where a page asks.
"use strict";
