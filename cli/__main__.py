from cli.mlstack import main

main()
