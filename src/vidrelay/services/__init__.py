"""The use cases (DESIGN.md §4): one function each, one transaction each, called by the admin
API, the CLI and the config file alike, so an action follows the same rules everywhere."""
