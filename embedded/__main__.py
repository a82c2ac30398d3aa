from embedded.cli import main

main()
