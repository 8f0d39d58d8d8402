"""The demos, one module each: ``engine/demos/<name>.py`` holds the demo's ``SPEC`` (a `DemoSpec`), its
``extract`` (how its parameters are read from text, when more than the generic "word number" pairs) and
its ``run(params, device) -> DemoOutput``. The catalogue (`engine.catalogue`) finds them by listing this
package: adding a demo is adding its module (and its test). A module imports nothing heavy at the top:
``run`` imports torch and matplotlib when it runs, so `import engine` and the bot's autocomplete stay
cheap. A module whose name starts with "_" is not a demo."""
