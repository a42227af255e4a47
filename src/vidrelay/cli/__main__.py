from vidrelay.cli.root import app

app()
