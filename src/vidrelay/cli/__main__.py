from vidrelay.cli import main

main()
