from labelwright.cli import main

main()
