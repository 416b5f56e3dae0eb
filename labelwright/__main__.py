from labelwright.cli import main

if __name__ == "__main__":  # not when a server worker process (multiprocessing spawn) imports it
    main()
