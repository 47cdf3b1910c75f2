"""The staff dashboard: ``selectors`` read aggregates, ``charts`` turn them into SVG
geometry, ``forms`` validate the actions and ``views`` run them."""
