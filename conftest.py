pytest_plugins = ["postwire_testing.plugin"]
