import AtriumCore
