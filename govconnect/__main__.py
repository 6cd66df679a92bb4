from govconnect.cli import main

main()
